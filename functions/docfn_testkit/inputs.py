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


@lru_cache(maxsize=4)
def decompression_bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A real, valid greyscale PNG of width x height: ~1 MB on the wire, 900 MB when decoded. Made
    once per process (bytes, immutable)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", _compressed_rows(b"\x00" + b"\xff" * width, height))
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


def _compressed_rows(row: bytes, height: int) -> bytes:
    """``height`` copies of one filtered scanline as a zlib stream, deflated without building them
    all in memory and without deflating the same rows again and again: a block of 256 rows is
    deflated once, ending in a full flush (byte-aligned, no reference back past it), so every such
    block deflates to the same bytes, which are repeated; the checksum is over every row."""
    block = row * 256
    whole, rest = divmod(height, 256)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: header and checksum added here
    repeated = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH) if whole else b""
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    last = tail.compress(row * rest) + tail.flush(zlib.Z_FINISH)
    checksum = 1
    for _ in range(whole):
        checksum = zlib.adler32(block, checksum)
    checksum = zlib.adler32(row * rest, checksum)
    return b"\x78\xda" + repeated * whole + last + struct.pack(">I", checksum)


def _fctl(sequence: int, width: int, height: int) -> bytes:
    """An APNG frame control chunk: a frame of width x height at (0, 0), shown 1/10 s."""
    return png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", sequence, width, height, 0, 0, 1, 10, 0, 0))


def apng_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid two-frame APNG on a width x height canvas (1-bit greyscale, ~80 KB on the wire): its
    first frame fills the canvas, the second is 1x1. Seeking to frame 2 composites it onto frame 1,
    so a decoder that seeks before checking the canvas decodes width x height pixels first."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    tiny = zlib.compress(b"\x00\x80")  # one 1-bit row: filter byte + one pixel
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"acTL", struct.pack(">II", 2, 0))
        + _fctl(0, width, height)
        + png_chunk(b"IDAT", _compressed_rows(b"\x00" + b"\xff" * ((width + 7) // 8), height))
        + _fctl(1, 1, 1)
        + png_chunk(b"fdAT", struct.pack(">I", 2) + tiny)
        + png_chunk(b"IEND", b"")
    )


def gif_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid two-frame GIF whose logical screen is width x height and whose frames are 1x1 pixel:
    a few dozen bytes that a GIF decoder composites onto a width x height canvas."""
    frame = (
        b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: 1/10 s
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
        + b"\x02\x02\x44\x01\x00"  # LZW: minimum code size 2, one pixel of colour 0
    )
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0)  # global table of 2 colours
    return b"GIF89a" + screen + b"\x00\x00\x00\xff\xff\xff" + frame + frame + b"\x3b"


def _riff_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")


def animated_webp_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid two-frame animated WebP on a width x height canvas with 1x1 frames (~100 bytes):
    libwebp's animation decoder allocates and fills the whole canvas for the first frame."""
    pixel = image_bytes(Image.new("RGBA", (1, 1), "white"), "WEBP", lossless=True)
    vp8l = pixel[12:]  # the single image's VP8L chunk, after "RIFF" size "WEBP"
    frame_header = struct.pack("<I", 0)[:3] * 2 + struct.pack("<I", 0)[:3] * 2  # at (0, 0), 1x1
    frame = _riff_chunk(b"ANMF", frame_header + struct.pack("<I", 100)[:3] + b"\x00" + vp8l)
    canvas = struct.pack("<I", width - 1)[:3] + struct.pack("<I", height - 1)[:3]
    body = (
        b"WEBP"
        + _riff_chunk(b"VP8X", b"\x12\x00\x00\x00" + canvas)  # flags: alpha, animation
        + _riff_chunk(b"ANIM", b"\x00\x00\x00\x00" + b"\x00\x00")  # background, loop forever
        + frame
        + frame
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def word_square(number: int) -> bytes:
    """A 112x112 PNG reading ``<number>``: the cheapest real OCR input (the detector scales the short
    side up to 736 px, so a square costs half a 2:1 ``word_page``; the soak's 1,000 inferences)."""
    image = Image.new("L", (112, 112), 255)
    ImageDraw.Draw(image).text((8, 44), str(number), fill=0, font=_font())
    return image_bytes(image, "PNG")
