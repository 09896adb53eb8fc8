"""Real typeset tables with known cells: groff's ``tbl`` writes a PDF, pypdfium2 renders it at
150 dpi, the render is cropped to the table with a white margin.

A table is a list of rows; each row lists its cells left to right as ``TableCell``s (text and spans).
Slots covered by a span from a row above are simply left out of that row, as in HTML.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pypdfium2
from PIL import Image, ImageOps

Style = Literal["ruled", "borderless", "framed"]


@dataclass(frozen=True)
class TableCell:
    text: str
    rowspan: int = 1
    colspan: int = 1


def slots(rows: list[list[TableCell]]) -> dict[tuple[int, int], TableCell]:
    """(row, col) of each cell's anchor slot, spans placed the HTML way."""
    anchors: dict[tuple[int, int], TableCell] = {}
    covered: set[tuple[int, int]] = set()
    for r, row in enumerate(rows):
        c = 0
        for cell in row:
            while (r, c) in covered:
                c += 1
            anchors[(r, c)] = cell
            covered |= {(r + i, c + j) for i in range(cell.rowspan) for j in range(cell.colspan)}
            c += cell.colspan
    return anchors


def _tbl_source(rows: list[list[TableCell]], style: Style) -> str:
    anchors = slots(rows)
    n_rows = len(rows)
    n_cols = max(c + cell.colspan for (_, c), cell in anchors.items())
    owner: dict[tuple[int, int], tuple[int, int]] = {}
    for (r, c), cell in anchors.items():
        for i in range(cell.rowspan):
            for j in range(cell.colspan):
                owner[(r + i, c + j)] = (r, c)
    formats, lines = [], []
    for r in range(n_rows):
        keys, fields = [], []
        for c in range(n_cols):
            anchor = owner[(r, c)]
            if anchor == (r, c):
                keys.append("l")
                fields.append(anchors[anchor].text)
            elif anchor[0] == r:
                keys.append("s")  # spanned from the left: no data field
            else:
                keys.append("^")  # spanned from above
                fields.append("")
        formats.append(" ".join(keys))
        lines.append("|".join(fields))
        if style == "framed" and r == 0:
            lines.append("_")
    options = {"ruled": "allbox ", "borderless": "", "framed": "doublebox "}[style]
    return "\n".join([".TS", f"{options}tab(|);", *formats[:-1], formats[-1] + ".", *lines, ".TE", ""])


def render_table(rows: list[list[TableCell]], style: Style, dpi: int = 150, margin: int = 24) -> Image.Image:
    """The table typeset by groff (Times, 11 pt) and rendered at ``dpi``, cropped to its ink."""
    source = ".ps 11\n.vs 15\n" + _tbl_source(rows, style)
    pdf = subprocess.run(
        ["groff", "-t", "-Tpdf"], input=source.encode(), capture_output=True, check=True
    ).stdout
    document = pypdfium2.PdfDocument(pdf)
    try:
        page = document[0].render(scale=dpi / 72).to_pil().convert("RGB")
    finally:
        document.close()
    ink = np.argwhere(np.asarray(page.convert("L")) < 200)
    (y0, x0), (y1, x1) = ink.min(axis=0), ink.max(axis=0)
    table = page.crop((int(x0), int(y0), int(x1) + 1, int(y1) + 1))
    return ImageOps.expand(table, border=margin, fill="white")
