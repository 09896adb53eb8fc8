"""multipart/form-data bodies for tests that post many crops in one request (a Lambda function URL
event carries the body as bytes, so it is built here rather than by an HTTP client)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence

from PIL import Image

from .paths import DEVSET

# Devset crops (page, left, top, right, bottom) of different content and size: text strips, blocks,
# columns, a heading; enough for a page's worth of blocks.
CROPS = [
    ("001", 80, 120, 700, 190),
    ("002", 100, 300, 460, 620),
    ("003", 60, 200, 200, 900),
    ("004", 100, 100, 1100, 260),
    ("005", 300, 700, 800, 1100),
    ("006", 90, 1300, 400, 1650),
    ("008", 150, 500, 1150, 620),
    ("010", 385, 380, 985, 470),
    ("002", 600, 900, 1000, 1000),
]


def crop_pngs(count: int = len(CROPS)) -> list[bytes]:
    """``count`` devset crops as PNG bytes (cycling through :data:`CROPS`)."""
    pngs = []
    for page, *box in (CROPS * (count // len(CROPS) + 1))[:count]:
        buffer = io.BytesIO()
        Image.open(DEVSET / f"{page}.png").crop(tuple(box)).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    return pngs


def multipart(
    files: list[bytes], fields: Sequence[tuple[str, str]] = (), name: str = "files"
) -> tuple[bytes, str]:
    """(body, content type) of a form with each PNG as a ``name`` part, then the text ``fields``."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for n, data in enumerate(files):
        out.write(f"--{boundary}\r\n".encode())
        out.write(f'Content-Disposition: form-data; name="{name}"; filename="crop{n}.png"\r\n'.encode())
        out.write(b"Content-Type: image/png\r\n\r\n" + data + b"\r\n")
    for key, value in fields:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"
