"""The page at ``/`` to try docfn in a browser: plain HTML, JavaScript and CSS shipped as package data
(``web/``), nothing from another host.

"Read in this browser" runs the OCR pack in the page itself (onnxruntime-web, WASM): its assets are
built from ``web/`` (npm, locked) into ``web/ocr/`` by ``scripts/setup`` and the image build, served
at ``/try/ocr/NAME``; the pack's manifest and files at ``/try/ocr-pack/NAME`` (the page checks their
sha256 against the manifest). Nothing the page reads that way is uploaded.

The page and everything it loads are served cross-origin isolated (``ISOLATION``: COOP
``same-origin``, COEP ``require-corp``, CORP ``same-origin``), so the browser gives the page
SharedArrayBuffer and onnxruntime-web runs its WASM on several threads (its pthread workers load
``/try/ocr/ort-wasm-simd-threaded.mjs``, same origin, with the same headers). Everything the page
fetches is same-origin, ``blob:`` or ``data:``, so the isolation blocks nothing it uses.

``POST /try/page?page=N`` renders a page of the dropped document as PNG, exactly as the tasks see
it (same DPI), so the boxes of a result line up with it. Rendering is page work (decoding, up to the
pixel limit): it runs under the page tasks' admission, so the helper route cannot bypass the
bounded queue (429 past capacity).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Awaitable, Callable
from functools import partial

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from PIL import Image

from ...core.documents import DecodeLimits, open_document
from ...core.errors import BadOptions, NotFound
from ...packs.manifest import MANIFEST_NAME
from ...packs.store import LocalPack
from .body import read_body
from .web_assets import OCR_ASSETS, WEB

ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
# The media types the browser OCR's files (web_assets.OCR_ASSETS) are served with.
OCR_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
}
# Cross-origin isolation for the page at / and every file it or its workers load (see above).
ISOLATION = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# The OCR pack the page reads with (None: this function serves no OCR pack).
OcrPack = Callable[[], LocalPack] | None
# Runs work under the page tasks' admission and deadline (the app's ``admitted``).
Admitted = Callable[[Callable[[], bytes]], Awaitable[bytes]]


def add_try_page(
    app: FastAPI, limits: DecodeLimits, max_bytes: int, admitted: Admitted, ocr_pack: OcrPack = None
) -> None:
    pack_once = _Once(ocr_pack)

    # "Read in this browser" is offered only where it works: an OCR pack to fetch and the built assets
    # (the ocr function's image ships them; the other images leave the 12 MB of WASM out).
    browser_ocr = ocr_pack is not None and (OCR_ASSETS / "docfn-ocr.js").is_file()

    index_html = (WEB / "index.html").read_text(encoding="utf-8")  # once, not per request
    if not browser_ocr:
        index_html = index_html.replace(
            'data-ocr-assets="/try/ocr/"', 'data-ocr-assets="" data-no-browser-ocr', 1
        )

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response(index_html, media_type="text/html", headers=ISOLATION)

    @app.get("/try/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise NotFound(f"no page asset {name!r}")
        return FileResponse(WEB / name, media_type=media_type, headers=ISOLATION)

    @app.get("/try/ocr/{name}", include_in_schema=False)
    async def ocr_asset(name: str) -> FileResponse:
        path = OCR_ASSETS / name
        media_type = OCR_TYPES.get(path.suffix)
        if media_type is None or "/" in name or name.startswith("."):
            raise NotFound(f"no browser OCR asset {name!r}")
        if not path.is_file():
            raise NotFound(
                f"browser OCR asset {name!r} is not here: the ocr function's image serves the browser"
                " OCR; from a checkout, run scripts/setup (it runs `npm ci` and `npm run build` in web/)"
            )
        return FileResponse(path, media_type=media_type, headers=ISOLATION)

    @app.get("/try/ocr-pack/{name}", include_in_schema=False)
    async def ocr_pack_file(name: str) -> FileResponse:
        pack = await run_in_threadpool(pack_once.get)
        if name == MANIFEST_NAME:
            return FileResponse(
                pack.pack_dir / MANIFEST_NAME, media_type="application/json", headers=ISOLATION
            )
        listed = {entry.path for entry in pack.manifest.files}
        if name not in listed:
            raise NotFound(f"{name!r} is not a file of the pack {pack.manifest.pack_id}")
        return FileResponse(pack.pack_dir / name, media_type="application/octet-stream", headers=ISOLATION)

    @app.post("/try/page", include_in_schema=False)
    async def page_image(request: Request) -> Response:
        given = await read_body(request, max_bytes)
        number = request.query_params.get("page", "1")
        if not number.isdigit() or int(number) < 1:
            raise BadOptions(f"page must be a page number from 1; got {number!r}")
        png = await admitted(
            partial(_render_png, given.data, given.content_type, int(number) - 1, limits, max_bytes)
        )
        return Response(png, media_type="image/png")


def _render_png(
    data: bytes, content_type: str | None, index: int, limits: DecodeLimits, max_bytes: int
) -> bytes:
    document = open_document(data, content_type, limits, max_bytes)
    try:
        (selected,) = document.select([index])  # the same range check and message as the tasks'
        page = document.render(selected)
    finally:
        document.close()
    buffer = io.BytesIO()
    Image.fromarray(page.image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class _Once:
    """The OCR pack, materialised (fetched and verified) on first use and kept for the process."""

    def __init__(self, source: OcrPack) -> None:
        self._source = source
        self._pack: LocalPack | None = None
        self._lock = threading.Lock()

    def get(self) -> LocalPack:
        if self._source is None:
            raise NotFound("this function serves no OCR pack, so the page cannot read in the browser")
        with self._lock:
            if self._pack is None:
                self._pack = self._source()
            return self._pack
