"""Generated pages whose source is known, for fidelity and coverage checks: groff ``ms`` documents
(a manual page, a page of listings, a page of displayed formulas typeset by ``eqn``, pages of ``tbl``
tables with paragraphs around them), each a born-digital PDF and its 150-dpi rendering (a page
image: what a scan of it would be). The text truth of a PDF is poppler's ``pdftotext -layout``
(poppler-utils, installed by ``scripts/test``): a reader parse never uses. A table's truth is its
cells as typeset (:func:`truth_html`).
"""

from __future__ import annotations

import html
import shutil
import subprocess
from dataclasses import dataclass, field

import pypdfium2 as pdfium
from PIL import Image

from .docgen import png_bytes
from .pdfgen import LISTINGS_AND_PROSE_SOURCE, MANUAL_SOURCE, groff_ms_pdf
from .tablegen import SAMPLE_TABLES, Style, TableCell, tbl_source

# Displayed formulas between sentences (eqn): what a page of mathematics in a manual looks like.
FORMULA_SOURCE = r"""
.EQ
delim $$
.EN
.NH
Roots and sums
.PP
The roots of a quadratic equation with real coefficients follow from its discriminant.
For $a != 0$ they are
.EQ
x sub 1,2 = {- b +- sqrt {b sup 2 - 4 a c}} over {2 a}
.EN
and both are real exactly when the discriminant is not negative.
.PP
The sum of the first $n$ natural numbers is
.EQ
sum from {k = 1} to n k = {n ( n + 1 )} over 2
.EN
which Gauss is said to have found as a schoolboy.
.PP
A geometric series with ratio $q$ below one in absolute value converges to
.EQ
sum from {k = 0} to inf q sup k = 1 over {1 - q}
.EN
and diverges otherwise.
"""

TABLE_TEXT = (
    "The figures below were collected by the regional offices during the year and checked twice.",
    "Every value in the table is final; later corrections are published in the next edition.",
)
# Running heads and page numbers as ms prints them (left/centre/right header and footer strings).
FURNITURE = ".ds LH Generated Report\n.ds CH\n.ds RH Fidelity Pages\n.ds CF Page %\n"


@dataclass(frozen=True)
class GeneratedPage:
    kind: str  # the page kind reported: manual, listings, formula, table
    name: str
    pdf: bytes
    tables: list[list[list[TableCell]]] = field(default_factory=list)  # each table's rows, in order


# Centred, and a plain box where tablegen's framed style has a double one.
_TBL_OPTIONS: dict[Style, str] = {"ruled": "center allbox ", "borderless": "center ", "framed": "center box "}


def table_page(name: str, style: Style) -> GeneratedPage:
    rows = SAMPLE_TABLES[name]
    source = (
        f"{FURNITURE}.PP\n{TABLE_TEXT[0]}\n.sp\n{tbl_source(rows, style, _TBL_OPTIONS)}.PP\n{TABLE_TEXT[1]}\n"
    )
    return GeneratedPage("table", f"{name} ({style})", groff_ms_pdf(source, "-t"), [rows])


def pages() -> list[GeneratedPage]:
    """Every generated page, in a fixed order."""
    return [
        GeneratedPage("manual", "manual", groff_ms_pdf(FURNITURE + MANUAL_SOURCE)),
        GeneratedPage("listings", "listings", groff_ms_pdf(FURNITURE + LISTINGS_AND_PROSE_SOURCE)),
        GeneratedPage("formula", "formula", groff_ms_pdf(FURNITURE + FORMULA_SOURCE, "-e")),
        table_page("prices", "ruled"),
        table_page("spanning", "ruled"),
        table_page("schedule", "framed"),
        table_page("prices", "borderless"),
    ]


def pdftotext(pdf: bytes) -> str:
    """Poppler's reading of the PDF's text (``-layout``): an independent truth for parse's."""
    tool = shutil.which("pdftotext")
    if tool is None:
        raise RuntimeError(
            "pdftotext is not installed: scripts/test installs it (apt-get install poppler-utils)"
        )
    return subprocess.run(
        [tool, "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()


def page_image(pdf: bytes, dpi: float = 150.0, index: int = 0) -> Image.Image:
    document = pdfium.PdfDocument(pdf)
    try:
        return document[index].render(scale=dpi / 72).to_pil().convert("RGB")
    finally:
        document.close()


def page_png(pdf: bytes, dpi: float = 150.0) -> bytes:
    """The first page rendered as a PNG: the page as a scanner would see it, without a text layer."""
    return png_bytes(page_image(pdf, dpi))


def truth_html(rows: list[list[TableCell]]) -> str:
    """The table as HTML, spans as ``rowspan``/``colspan`` (parse's ``table_body`` shape)."""
    out = ["<table>"]
    for row in rows:
        out.append("<tr>")
        for cell in row:
            attrs = (f' rowspan="{cell.rowspan}"' if cell.rowspan > 1 else "") + (
                f' colspan="{cell.colspan}"' if cell.colspan > 1 else ""
            )
            out.append(f"<td{attrs}>{html.escape(cell.text)}</td>")
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)
