"""Where the repository keeps what tests and benchmarks read (tests/data/SOURCES.md says where each
file came from). Nothing here looks outside the repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from docfn.packs.catalog import RECIPES

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
# Ten real typeset pages (PNG, 150 dpi) with their PDF text layers and a manifest.
DEVSET = DATA / "devset"
# PDFs whose text layers mode=auto must judge: born-digital (groff), a searchable scan (tesseract),
# wrong ToUnicode maps and a mixed PDF (made by scripts/make_text_layer_fixtures).
TEXT_LAYERS = DATA / "text_layers"
# Real AWS Lambda event payloads (function URL, S3 direct, via SQS, via EventBridge).
EVENTS = DATA / "events"
# Knative Serving's Service CRD, to validate manifests offline.
SCHEMAS = DATA / "schemas"
SAMPLE_PAGE = ROOT / "functions" / "docfn" / "samples" / "sample-page.png"
# The default OCR pack, named as the catalog names it (a new pack version changes every result).
OCR_PACK = "ocr-ppocrv6-tiny"
OCR_PACK_VERSION = RECIPES[OCR_PACK].version


def devset_manifest() -> list[dict[str, Any]]:
    return json.loads((DEVSET / "manifest.json").read_text())


def load_event(name: str) -> dict[str, Any]:
    """One of the sample Lambda events (``lambda-function-url.json``, ``s3-object-created.json``, …)."""
    return json.loads((EVENTS / name).read_text())
