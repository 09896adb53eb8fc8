"""``docfn export-web DIR``: the page's "read in this browser" OCR as a static folder (HTML, JS,
WASM and the OCR pack) that any static host serves: no function behind it, nothing uploaded.

The page is the one at ``/`` with its asset paths made relative and ``data-static`` set (only the
browser mode exists there); the pack is the one the ``ocr`` task would load (``DOCFN_MODEL_URI``, or
the default pack from the local store, built if missing), or ``--pack DIR``, verified first.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from ...core.errors import ConfigurationError
from ...packs.manifest import MANIFEST_NAME, Manifest, verify_pack
from ..http.web_assets import OCR_ASSETS, WEB

PAGE_FILES = ("app.js", "style.css")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    export = sub.add_parser("export-web", help="write the in-browser OCR page as a static folder")
    export.add_argument("dir", type=Path, help="folder to write (created; files in it are replaced)")
    export.add_argument("--pack", type=Path, help="an OCR pack directory (default: the ocr task's pack)")
    export.set_defaults(func=cmd_export_web)


def cmd_export_web(args: argparse.Namespace) -> int:
    pack_dir, manifest = _pack(args.pack)
    written = export_web(args.dir, pack_dir, manifest)
    total = sum(path.stat().st_size for path in written)
    print(
        f"{args.dir}: {len(written)} files, {total:,} bytes (pack {manifest.pack_id});"
        " serve it from any static host"
    )
    return 0


def export_web(target: Path, pack_dir: Path, manifest: Manifest) -> list[Path]:
    """Write the static folder; returns the files written."""
    assets = sorted(p for p in OCR_ASSETS.glob("*") if p.is_file()) if OCR_ASSETS.is_dir() else []
    if not any(p.name == "docfn-ocr.js" for p in assets):
        raise ConfigurationError(
            f"the browser OCR assets are not built ({OCR_ASSETS}): run scripts/setup (npm ci and"
            " npm run build in web/)"
        )
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def put(source: Path, relative: str) -> None:
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
        written.append(destination)

    page = (WEB / "index.html").read_text(encoding="utf-8")
    page = page.replace(
        'data-ocr-assets="/try/ocr/" data-ocr-pack="/try/ocr-pack/"',
        'data-ocr-assets="ocr/" data-ocr-pack="pack/" data-static',
    )
    page = page.replace('href="/try/', 'href="').replace('src="/try/', 'src="')
    if "/try/" in page or "data-static" not in page:
        raise RuntimeError("index.html changed shape: export-web cannot make its paths relative")
    (target / "index.html").write_text(page, encoding="utf-8")
    written.append(target / "index.html")
    for name in PAGE_FILES:
        put(WEB / name, name)
    for asset in assets:
        put(asset, f"ocr/{asset.name}")
    put(pack_dir / MANIFEST_NAME, f"pack/{MANIFEST_NAME}")
    for entry in manifest.files:
        put(pack_dir / entry.path, f"pack/{entry.path}")
    return written


def _pack(given: Path | None) -> tuple[Path, Manifest]:
    if given is not None:
        return given, verify_pack(given)
    from ...core.settings import Settings
    from ...packs.refs import OWN_PACK
    from ..wiring import build_service

    os.environ["DOCFN_TASKS"] = "ocr"
    pack = build_service(Settings()).task("ocr").local_pack(OWN_PACK)
    return pack.pack_dir, pack.manifest
