"""Canvas sizes read straight from an image file's first bytes, before any decoder library sees it.

Opening a WebP in Pillow creates libwebp's animation decoder, which allocates the whole canvas
(width x height x 4 bytes) there and then: the pixel limit has to be checked before ``Image.open``,
from the header itself. PNG's IHDR is read the same way so both canvas formats are refused alike.
"""

from __future__ import annotations

import struct


def canvas_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """(width, height) of the canvas the header declares; None when the header does not say (or
    this format has none: its decoder then reports the size before allocating)."""
    if fmt == "png":
        return _png_size(data)
    if fmt == "webp":
        return _webp_size(data)
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    # Signature (8), IHDR's length and type (8), then width and height, big-endian.
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _webp_size(data: bytes) -> tuple[int, int] | None:
    # RIFF container: "RIFF" size "WEBP", then the first chunk's type at 12 and payload at 20.
    kind, payload = data[12:16], data[20:30]
    if kind == b"VP8X" and len(payload) >= 10:  # extended (animation, alpha): 24-bit canvas size - 1
        width = int.from_bytes(payload[4:7], "little") + 1
        height = int.from_bytes(payload[7:10], "little") + 1
        return width, height
    if kind == b"VP8 " and len(payload) >= 10 and payload[3:6] == b"\x9d\x01\x2a":  # lossy key frame
        width, height = struct.unpack("<HH", payload[6:10])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and len(payload) >= 5 and payload[0] == 0x2F:  # lossless: 14-bit sizes - 1
        bits = int.from_bytes(payload[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None
