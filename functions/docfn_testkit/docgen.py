"""Real rendered test documents with known contents: text drawn with a TrueType font by Pillow,
saved as PNG or PDF (Pillow writes image PDFs; pypdfium2 renders them back like any PDF)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVuSerif-Bold.ttf" if bold else "DejaVuSerif.ttf"
    if (_DEJAVU / name).exists():
        return ImageFont.truetype(str(_DEJAVU / name), size)
    return ImageFont.load_default(size=size)  # Pillow's bundled FreeType font


def ruled_table(rows: list[list[str]], *, merge_header: bool = False) -> Image.Image:
    """A fully ruled table, one cell per string. ``merge_header`` spans row 0 across all columns
    (only ``rows[0][0]`` is drawn there) by leaving out that row's inner vertical rules."""
    f = font(26)
    col_w, row_h, margin = 230, 56, 30
    n_rows, n_cols = len(rows), len(rows[0])
    width, height = margin * 2 + col_w * n_cols, margin * 2 + row_h * n_rows
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for r in range(n_rows + 1):
        y = margin + r * row_h
        draw.line([(margin, y), (margin + col_w * n_cols, y)], fill="black", width=2)
    for c in range(n_cols + 1):
        x = margin + c * col_w
        top = margin + (row_h if merge_header and 0 < c < n_cols else 0)
        draw.line([(x, top), (x, margin + row_h * n_rows)], fill="black", width=2)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            if merge_header and r == 0 and c > 0:
                continue
            draw.text((margin + c * col_w + 14, margin + r * row_h + 13), text, font=f, fill="black")
    return image


def wrap(text: str, f: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if f.getlength(candidate) <= width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def two_column_page(
    title: str, left: list[str], right: list[str], header: str = "", footer: str = ""
) -> Image.Image:
    """A 150-dpi A4 page: a full-width title over two columns of paragraphs, optional running
    header and footer."""
    width, height = 1240, 1754
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    body, head = font(22), font(40, bold=True)
    margin, gutter = 110, 60
    col_w = (width - 2 * margin - gutter) // 2
    if header:
        draw.text((margin, 60), header, font=font(18), fill="black")
    draw.text((margin, 150), title, font=head, fill="black")
    for c, paragraphs in enumerate((left, right)):
        x, y = margin + c * (col_w + gutter), 260
        for paragraph in paragraphs:
            for line in wrap(paragraph, body, col_w):
                draw.text((x, y), line, font=body, fill="black")
                y += 32
            y += 24
    if footer:
        draw.text((width // 2 - 10, height - 90), footer, font=font(18), fill="black")
    return image


def pdf_from_images(images: list[Image.Image], dpi: float = 150.0) -> bytes:
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
