"""``docfn export-web DIR``: the page's "read in this browser" OCR as a static folder (HTML, JS,
WASM and the OCR pack) that any static host serves: no function behind it, nothing uploaded.

The page is the one at ``/`` with its asset paths made relative and ``data-static`` set (only the
browser mode exists there), with a README naming the headers a host sends for WASM threads
(cross-origin isolation; without them the page reads on one thread). The pack is the one the
``ocr`` task would load (``DOCFN_MODEL_URI``, or the default pack from the local store, built if
missing), or ``--pack DIR``, verified first.
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
# Written beside the page: what a host must send for the page to read on several threads.
README = """# docfn: OCR in this browser (a static copy)

Written by `docfn export-web`. Serve this folder from any static host and open `index.html`: the
page reads an image with the OCR pack ({pack}) in the browser (onnxruntime-web, WebAssembly);
nothing is uploaded. Serve `.mjs` and `.js` as `text/javascript` and `.wasm` as `application/wasm`.

From a host that sends no special headers the page reads on one WebAssembly thread. For up to
4 threads (`min(navigator.hardwareConcurrency, 4)`) the page must be cross-origin isolated: send

    Cross-Origin-Opener-Policy: same-origin
    Cross-Origin-Embedder-Policy: require-corp

(or `Cross-Origin-Embedder-Policy: credentialless`) on `index.html` **and on every file under
`ocr/`** - onnxruntime-web's threads are workers loading `ocr/ort-wasm-simd-threaded.mjs`, which the
browser refuses on an isolated page unless that file carries the COEP header too. Everything the page
loads is from this folder, so nothing else needs `Cross-Origin-Resource-Policy`. If only the page
is isolated, it sees that the worker script lacks the header and reads on one thread.
"""


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
    (target / "README.md").write_text(README.format(pack=manifest.pack_id), encoding="utf-8")
    written.append(target / "README.md")
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
