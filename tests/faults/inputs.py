"""Small distinct inputs for load, soak and fault tests: a line of text on a tiny page, generated."""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from ..inputs_factory import image_bytes


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=24)


def word_page(number: int) -> bytes:
    """A 192x96 PNG reading ``Invoice <number>``: distinct bytes and text per number, OCR in ms."""
    image = Image.new("L", (192, 96), 255)
    ImageDraw.Draw(image).text((8, 34), f"Invoice {number}", fill=0, font=_font())
    return image_bytes(image, "PNG")
