"""OTSL, the table language MinerU2.5 answers "Table Recognition:" in, to a :class:`Table` (whose
HTML and Markdown renderings are the table task's own).

OTSL writes the grid row by row, one token per slot: ``<fcel>`` a cell with text (the text follows
the token), ``<ecel>`` an empty cell, ``<lcel>`` a slot merged with the one to its left, ``<ucel>``
merged with the one above, ``<xcel>`` merged both ways (inside a 2-D span), ``<nl>`` ends a row.
A cell's colspan is the run of ``<lcel>``/``<xcel>`` to its right, its rowspan the run of
``<ucel>``/``<xcel>`` below it.

Model output can be malformed (ragged rows, a merge token with nothing to merge into, spans that
overlap, text after a merge token): rows are padded with empty slots, a span shrinks until its
rectangle holds merge tokens only, and a merge token no span claims becomes a cell of its own. Text
is never dropped: text written after a merge token joins the cell that covers the slot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..table.structure import Cell, Table

# docling's header/section variants of a text cell are read as text cells.
_TEXT = {"<fcel>", "<ched>", "<rhed>", "<srow>"}
_ORIGIN = _TEXT | {"<ecel>"}
_LEFT = {"<lcel>", "<xcel>"}
_UP = {"<ucel>", "<xcel>"}
_MERGE = {"<lcel>", "<ucel>", "<xcel>"}
_TOKEN = re.compile(r"(<fcel>|<ecel>|<lcel>|<ucel>|<xcel>|<ched>|<rhed>|<srow>|<nl>)")
_WRAPPER = re.compile(r"</?otsl>")


@dataclass
class _Slot:
    token: str
    text: str = ""


def looks_like_otsl(answer: str) -> bool:
    return _TOKEN.search(answer) is not None


def _rows(answer: str) -> list[list[_Slot]]:
    """The slots, row by row; text before the first token is kept in a cell of its own."""
    rows: list[list[_Slot]] = [[]]
    for part in _TOKEN.split(_WRAPPER.sub("", answer)):
        if part == "<nl>":
            rows.append([])
        elif _TOKEN.fullmatch(part):
            rows[-1].append(_Slot(part))
        elif part.strip():
            if rows[-1]:
                row = rows[-1]
                row[-1].text = f"{row[-1].text} {part.strip()}".strip()
            else:  # text with no token before it: a cell of its own
                rows[-1].append(_Slot("<fcel>", part.strip()))
    return [row for row in rows if row]


def otsl_to_table(answer: str) -> Table:
    """The table an OTSL answer describes (0 x 0 for an answer with no slots)."""
    rows = _rows(answer)
    width = max((len(row) for row in rows), default=0)
    for row in rows:
        row.extend(_Slot("<ecel>") for _ in range(width - len(row)))
    height = len(rows)
    owner: dict[tuple[int, int], Cell] = {}
    table = Table(rows=height, cols=width, method="vlm")
    for r in range(height):
        for c in range(width):
            if (r, c) in owner:
                continue
            slot = rows[r][c]
            if slot.token in _ORIGIN or slot.token in _MERGE:
                # A merge token nothing claimed (malformed) stands as a cell of its own.
                colspan = 1 + _run(rows, r, c, 0, 1, _LEFT, owner)
                rowspan = 1 + _run(rows, r, c, 1, 0, _UP, owner)
                rowspan, colspan = _fit(rows, r, c, rowspan, colspan, owner)
                cell = Cell(r, c, rowspan, colspan, slot.text)
                table.cells.append(cell)
                for rr in range(r, r + rowspan):
                    for cc in range(c, c + colspan):
                        owner[(rr, cc)] = cell
                        if (rr, cc) != (r, c) and rows[rr][cc].text:
                            cell.text = f"{cell.text} {rows[rr][cc].text}".strip()
    return table


def _run(
    rows: list[list[_Slot]],
    r: int,
    c: int,
    dr: int,
    dc: int,
    tokens: set[str],
    owner: dict[tuple[int, int], Cell],
) -> int:
    """How many slots after (r, c) along (dr, dc) are unclaimed merge tokens of ``tokens``."""
    count = 0
    rr, cc = r + dr, c + dc
    while rr < len(rows) and cc < len(rows[0]) and rows[rr][cc].token in tokens and (rr, cc) not in owner:
        count += 1
        rr, cc = rr + dr, cc + dc
    return count


def _fit(
    rows: list[list[_Slot]], r: int, c: int, rowspan: int, colspan: int, owner: dict[tuple[int, int], Cell]
) -> tuple[int, int]:
    """Shrink the span until every slot of its rectangle but the first is an unclaimed merge token
    (rows first: a 2-D span whose lower rows are not merged is the top row's colspan)."""

    def valid(height: int, width: int) -> bool:
        return all(
            (rr, cc) == (r, c) or (rows[rr][cc].token in _MERGE and (rr, cc) not in owner)
            for rr in range(r, r + height)
            for cc in range(c, c + width)
        )

    while rowspan > 1 and not valid(rowspan, colspan):
        rowspan -= 1
    while colspan > 1 and not valid(rowspan, colspan):
        colspan -= 1
    return rowspan, colspan
