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


# tbl's table options for each style (before ``tab(|);``).
TBL_OPTIONS: dict[Style, str] = {"ruled": "allbox ", "borderless": "", "framed": "doublebox "}


def tbl_source(rows: list[list[TableCell]], style: Style, options: dict[Style, str] = TBL_OPTIONS) -> str:
    """``rows`` as a tbl table (spans as ``s`` and ``^``), under ``options[style]``."""
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
    return "\n".join([".TS", f"{options[style]}tab(|);", *formats[:-1], formats[-1] + ".", *lines, ".TE", ""])


def table_pdf(rows: list[list[TableCell]], style: Style, *, around: tuple[str, str] = ("", "")) -> bytes:
    """A born-digital page: the table typeset by groff (Times, 11 pt), with the paragraphs
    ``around`` it (before, after) when given; its text layer holds every cell's text exactly."""
    before, after = (f".PP\n{text}\n" if text else "" for text in around)
    source = ".ps 11\n.vs 15\n" + before + tbl_source(rows, style) + after
    macros = ["-ms"] if any(around) else []
    return subprocess.run(
        ["groff", *macros, "-t", "-Tpdf"], input=source.encode(), capture_output=True, check=True
    ).stdout


def render_table(rows: list[list[TableCell]], style: Style, dpi: int = 150, margin: int = 24) -> Image.Image:
    """The table typeset by groff (Times, 11 pt) and rendered at ``dpi``, cropped to its ink."""
    pdf = table_pdf(rows, style)
    document = pypdfium2.PdfDocument(pdf)
    try:
        page = document[0].render(scale=dpi / 72).to_pil().convert("RGB")
    finally:
        document.close()
    ink = np.argwhere(np.asarray(page.convert("L")) < 200)
    (y0, x0), (y1, x1) = ink.min(axis=0), ink.max(axis=0)
    table = page.crop((int(x0), int(y0), int(x1) + 1, int(y1) + 1))
    return ImageOps.expand(table, border=margin, fill="white")


def _row(*texts: str) -> list[TableCell]:
    return [TableCell(text) for text in texts]


# Tables with known cells: plain, spanning (a rowspan and a colspan header), and a longer one.
SAMPLE_TABLES: dict[str, list[list[TableCell]]] = {
    "prices": [
        _row("Fruit", "Qty", "Price"),
        _row("apple", "12", "3.50"),
        _row("banana", "7", "1.25"),
        _row("cherry", "40", "9.99"),
        _row("plum", "23", "4.10"),
    ],
    "spanning": [
        [TableCell("Region", rowspan=2), TableCell("Sales 2024", colspan=2), TableCell("Stores", rowspan=2)],
        _row("First half", "Second half"),
        _row("North", "1,200", "1,450", "14"),
        _row("South", "980", "1,105", "9"),
        _row("East", "2,310", "2,004", "21"),
        _row("West", "645", "702", "6"),
    ],
    "schedule": [
        _row("Day", "Morning", "Afternoon", "Room"),
        _row("Monday", "Opening talk", "Workshop A", "Hall 1"),
        _row("Tuesday", "Keynote", "Panel session", "Hall 2"),
        [TableCell("Wednesday"), TableCell("Excursion to the lake", colspan=2), TableCell("Bus")],
        _row("Thursday", "Poster session", "Workshop B", "Hall 3"),
        _row("Friday", "Closing talk", "Awards dinner", "Hall 1"),
    ],
}


@dataclass(frozen=True)
class DevsetTable:
    """A table on a devset page: where it is (pixels) and its cells, read off the page by eye."""

    page: str
    box: tuple[int, int, int, int]
    rows: list[list[TableCell]]


DEVSET_TABLES: dict[str, DevsetTable] = {
    # mathtools: a framed box of command signatures, no inner rules.
    "001-framed": DevsetTable(
        "001",
        (285, 982, 975, 1078),
        [
            _row("\\mathllap[⟨mathstyle⟩]{⟨math⟩}", "\\mathclap[⟨mathstyle⟩]{⟨math⟩}"),
            _row("\\mathrlap[⟨mathstyle⟩]{⟨math⟩}", "\\clap{⟨text⟩}"),
            _row("\\mathmbox{⟨math⟩}", "\\mathmakebox[⟨width⟩][⟨pos⟩]{⟨math⟩}"),
        ],
    ),
    # ragged2e: a booktabs table (horizontal rules only), cells wrapping over two lines.
    "003-booktabs": DevsetTable(
        "003",
        (350, 1030, 1060, 1245),
        [
            _row("Command", "Uses"),
            _row(
                "\\Centering",
                "\\CenteringLeftskip, \\CenteringRightskip, \\CenteringParfillskip, \\CenteringParindent",
            ),
            _row(
                "\\RaggedLeft",
                "\\RaggedLeftLeftskip, \\RaggedLeftRightskip, \\RaggedLeftParfillskip, \\RaggedLeftParindent",
            ),
            _row(
                "\\RaggedRight",
                "\\RaggedRightLeftskip, \\RaggedRightRightskip, \\RaggedRightParfillskip,"
                " \\RaggedRightParindent",
            ),
            _row("\\justifying", "\\JustifyingParfillskip, \\JustifyingParindent"),
        ],
    ),
}
