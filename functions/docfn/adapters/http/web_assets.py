"""Where the page at ``/`` and the browser OCR's built assets live in the package (no imports
beyond pathlib: the CLI's ``export-web`` reads these without loading the web stack)."""

from __future__ import annotations

from pathlib import Path

WEB = Path(__file__).with_name("web")
# The browser OCR's build output (web/build.mjs in the repository).
OCR_ASSETS = WEB / "ocr"
