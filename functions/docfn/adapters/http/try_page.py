"""The page at ``/`` to try docfn in a browser: plain HTML, JavaScript and CSS shipped as package data
(``web/``), no build step and nothing from another host. ``POST /try/page?page=N`` renders a page
of the dropped document as PNG, exactly as the tasks see it (same DPI), so the boxes of a result
line up with it. Rendering is page work (decoding, up to the pixel limit): it runs under the page
tasks' admission, so the helper route cannot bypass the bounded queue (429 past capacity).
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from PIL import Image

from ...core.documents import DecodeLimits, open_document
from ...core.errors import BadOptions, NotFound
from .body import read_body

WEB = Path(__file__).with_name("web")
ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
# Runs work under the page tasks' admission and deadline (the app's ``admitted``).
Admitted = Callable[[Callable[[], bytes]], Awaitable[bytes]]


def add_try_page(app: FastAPI, limits: DecodeLimits, max_bytes: int, admitted: Admitted) -> None:
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB / "index.html", media_type="text/html")

    @app.get("/try/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise NotFound(f"no page asset {name!r}")
        return FileResponse(WEB / name, media_type=media_type)

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
