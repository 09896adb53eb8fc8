"""Hostile, unusual and small inputs, generated (not stored) so the repository stays small. PDFs of
images come from docgen.pdf_from_images, the one PDF writer of the tests."""

from __future__ import annotations

import io
import struct
import zlib
from functools import lru_cache

import pypdfium2 as pdfium
from PIL import Image, ImageDraw, ImageFont


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def decompression_bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A real, valid greyscale PNG of width x height: ~1 MB on the wire, 900 MB when decoded."""
    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * width  # filter byte + white pixels
    parts = [compressor.compress(row * 256) for _ in range(height // 256)]
    parts.append(compressor.compress(row * (height % 256)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def image_bytes(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def blank_pdf(pages: int, width: float = 612, height: float = 792) -> bytes:
    document = pdfium.PdfDocument.new()
    for _ in range(pages):
        document.new_page(width, height)
    buffer = io.BytesIO()
    document.save(buffer)
    document.close()
    return buffer.getvalue()


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=24)


def word_page(number: int) -> bytes:
    """A 192x96 PNG reading ``Invoice <number>``: distinct bytes and text per number, OCR in ms (the
    small distinct inputs of the load, soak and fault tests)."""
    image = Image.new("L", (192, 96), 255)
    ImageDraw.Draw(image).text((8, 34), f"Invoice {number}", fill=0, font=_font())
    return image_bytes(image, "PNG")


def word_square(number: int) -> bytes:
    """A 112x112 PNG reading ``<number>``: the cheapest real OCR input (the detector scales the short
    side up to 736 px, so a square costs half a 2:1 ``word_page``; the soak's 1,000 inferences)."""
    image = Image.new("L", (112, 112), 255)
    ImageDraw.Draw(image).text((8, 44), str(number), fill=0, font=_font())
    return image_bytes(image, "PNG")
