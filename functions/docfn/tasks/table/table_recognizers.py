"""Table recognisers: a protocol, a registry by name, the classic one (rulings + OCR alignment) and
SLANet's (a learned structure model, OCR pieces placed into its cells by overlap).

The VLM recogniser (MinerU2.5's table prompt) registers as "vlm" (``vlm_recognizer``); parse and
the table task pick one by name and never know which kind they got.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Protocol

import numpy as np

from ...core.errors import BadOptions
from ...core.geometry import area, enclosing, intersection, rows_by_vertical_overlap
from ..ocr.engine import OcrEngine
from .layer_cells import phrases, read_empty_cells
from .rulings import Rulings, find_rulings, grid_spans, rule_present
from .slanet import GridCell, SlanetStructure
from .structure import Cell, Table
from .words import Piece, join_pieces, read_pieces


class TableRecognizer(Protocol):
    """Reads a table image. ``words``: the PDF text layer's words inside it (crop pixels), given
    where the page's layer is trusted: a recogniser that reads cells takes their text from these,
    and OCR only for cells where they have nothing; None: OCR everything."""

    name: str

    def __call__(self, image_rgb: np.ndarray, words: list[Piece] | None = None) -> Table: ...


_REGISTRY: dict[str, Callable[..., TableRecognizer]] = {}


def register_table_recognizer(name: str, factory: Callable[..., TableRecognizer]) -> None:
    _REGISTRY[name] = factory


def table_recognizer(name: str, **resources: object) -> TableRecognizer:
    """Build recogniser ``name`` from the resources it needs (e.g. ``ocr=OcrEngine``)."""
    factory = _REGISTRY.get(name)
    if factory is None:
        raise BadOptions(f"unknown table recogniser {name!r}; known: {sorted(_REGISTRY)}")
    return factory(**resources)


def _rows_by_alignment(pieces: list[Piece]) -> list[list[Piece]]:
    """Rows = runs of pieces whose vertical centres fall within the current row's extent."""
    return rows_by_vertical_overlap(sorted(pieces, key=lambda p: p.cy), lambda p: p.bbox)


def _columns_by_alignment(rows: list[list[Piece]], min_gap: float) -> list[tuple[float, float]]:
    """Column x-ranges from the pieces of rows with several cells (single-piece rows may span)."""
    multi = [p for row in rows if len(row) > 1 for p in row] or [p for row in rows for p in row]
    spans = sorted((p.bbox[0], p.bbox[2]) for p in multi)
    columns: list[list[float]] = []
    for start, end in spans:
        if columns and start < columns[-1][1] + min_gap:
            columns[-1][1] = max(columns[-1][1], end)
        else:
            columns.append([start, end])
    return [(a, b) for a, b in columns]


class ClassicTableRecognizer:
    """Grid from ruling lines when the table is ruled both ways, else rows and columns from how
    the OCR boxes line up."""

    name = "classic"

    def __init__(self, ocr: OcrEngine) -> None:
        self.ocr = ocr

    def __call__(self, image_rgb: np.ndarray, words: list[Piece] | None = None) -> Table:
        return self.with_rulings(image_rgb, find_rulings(image_rgb), words)

    def with_rulings(
        self, image_rgb: np.ndarray, rulings: Rulings, words: list[Piece] | None = None
    ) -> Table:
        if rulings.is_grid:
            return self._from_rulings(image_rgb, rulings, words)
        # Rows and columns from how the words line up: the layer's words when it has any here.
        pieces = words or read_pieces(self.ocr, image_rgb, erase=rulings.mask())
        return self._from_alignment(pieces)

    def _from_rulings(self, image_rgb: np.ndarray, rulings: Rulings, words: list[Piece] | None) -> Table:
        ys, xs = rulings.ys, rulings.xs

        def cuts_for(top: float, bottom: float) -> list[float]:
            # Only rules really drawn beside this line cut it: a spanning cell's text stays whole.
            return [x for x in xs[1:-1] if rule_present(rulings.vertical, x, top, bottom, horizontal=False)]

        pieces = (
            words
            if words is not None
            else read_pieces(self.ocr, image_rgb, erase=rulings.mask(), cuts_for=cuts_for)
        )
        table = Table(rows=len(ys) - 1, cols=len(xs) - 1, method="rulings")
        for row, col, rowspan, colspan in grid_spans(rulings):
            box = (xs[col], ys[row], xs[col + colspan], ys[row + rowspan])
            inside = [p for p in pieces if box[0] <= p.cx < box[2] and box[1] <= p.cy < box[3]]
            table.cells.append(Cell(row, col, rowspan, colspan, join_pieces(inside), box))
        if words is not None:
            read_empty_cells(self.ocr, image_rgb, table, words, rulings.mask())
        return table

    def _from_alignment(self, pieces: list[Piece]) -> Table:
        if not pieces:
            return Table(rows=0, cols=0, method="alignment")
        rows = _rows_by_alignment(pieces)
        heights = sorted(p.bbox[3] - p.bbox[1] for p in pieces)
        columns = _columns_by_alignment(rows, min_gap=max(8.0, heights[len(heights) // 2] * 0.8))
        table = Table(rows=len(rows), cols=len(columns), method="alignment")
        for r, row in enumerate(rows):
            slots: dict[int, list[Piece]] = {}
            extent: dict[int, int] = {}
            for piece in row:
                hit = [c for c, (a, b) in enumerate(columns) if piece.bbox[0] < b and piece.bbox[2] > a]
                first = (
                    hit[0] if hit else min(range(len(columns)), key=lambda c: abs(columns[c][0] - piece.cx))
                )
                slots.setdefault(first, []).append(piece)
                extent[first] = max(extent.get(first, first), hit[-1] if hit else first)
            owner: dict[int, Cell] = {}  # column -> the cell of this row covering it
            for first in sorted(slots):
                if first in owner:  # inside a span started to its left: same cell
                    owner[first].text = f"{owner[first].text} {join_pieces(slots[first])}"
                    continue
                last = extent[first]
                group = slots[first]
                box = enclosing(p.bbox for p in group)
                cell = Cell(r, first, 1, last - first + 1, join_pieces(group), box)
                table.cells.append(cell)
                owner.update(dict.fromkeys(range(first, last + 1), cell))
        return table


def _cell_of(piece: Piece, cells: list[GridCell]) -> int:
    """The cell a text piece belongs to: the one covering most of it, else the nearest by centre."""

    def score(index: int) -> tuple[float, float]:
        box = cells[index].bbox
        covered = intersection(piece.bbox, box) / max(area(piece.bbox), 1.0)
        distance = abs((box[0] + box[2]) / 2 - piece.cx) + abs((box[1] + box[3]) / 2 - piece.cy)
        return covered, -distance

    return max(range(len(cells)), key=score)


class SlanetTableRecognizer:
    """Rows, columns and spans from SLANet-plus; each OCR piece goes to the cell it overlaps most."""

    name = "slanet"

    def __init__(self, ocr: OcrEngine, structure: SlanetStructure) -> None:
        self.ocr = ocr
        self.structure = structure

    def __call__(self, image_rgb: np.ndarray, words: list[Piece] | None = None) -> Table:
        return self.with_rulings(image_rgb, find_rulings(image_rgb), words)

    def with_rulings(
        self, image_rgb: np.ndarray, rulings: Rulings, words: list[Piece] | None = None
    ) -> Table:
        rows, cols, grid = self.structure(image_rgb)
        table = Table(rows=rows, cols=cols, method="slanet")
        if not grid:
            return table
        # Rules erased before OCR, as for the classic method: they neither join nor garble lines.
        # Lines are cut between the model's cells too: tight columns read as one line otherwise.
        # The layer's words as phrases: the model's cell boxes are loose, so a word alone may land
        # in the cell beside its own; a phrase is placed like an OCR piece, by most overlap.
        pieces = (
            phrases(words)
            if words is not None
            else read_pieces(
                self.ocr, image_rgb, erase=rulings.mask(), cuts_for=_cell_edges(grid), snap_cuts=True
            )
        )
        members: dict[int, list[Piece]] = {}
        for piece in pieces:
            members.setdefault(_cell_of(piece, grid), []).append(piece)
        for index, cell in enumerate(grid):
            text = join_pieces(members.get(index, []))
            table.cells.append(Cell(cell.row, cell.col, cell.rowspan, cell.colspan, text, cell.bbox))
        if words is not None:
            read_empty_cells(self.ocr, image_rgb, table, words, rulings.mask())
        return _without_empty_rows(table)


def _cell_edges(grid: list[GridCell]) -> Callable[[float, float], list[float]]:
    """For a text line from ``top`` to ``bottom``: the x midway between neighbouring cells beside it."""

    def edges(top: float, bottom: float) -> list[float]:
        middle = (top + bottom) / 2
        beside = sorted(c.bbox for c in grid if c.bbox[1] <= middle <= c.bbox[3])
        return [(a[2] + b[0]) / 2 for a, b in itertools.pairwise(beside)]

    return edges


def _without_empty_rows(table: Table) -> Table:
    """Drop rows the model predicted where the image has no text and no span crosses (a table's
    rows always hold something; SLANet sometimes adds a blank row above a borderless header)."""
    spanned = {r for c in table.cells if c.rowspan > 1 for r in range(c.row, c.row + c.rowspan)}
    empty = {
        r
        for r in range(table.rows)
        if r not in spanned and all(not c.text for c in table.cells if c.row == r)
    }
    if not empty:
        return table
    shift = {r: r - sum(1 for e in empty if e < r) for r in range(table.rows)}
    kept = [c for c in table.cells if c.row not in empty]
    cells = [Cell(shift[c.row], c.col, c.rowspan, c.colspan, c.text, c.bbox) for c in kept]
    return Table(rows=table.rows - len(empty), cols=table.cols, cells=cells, method=table.method)


class AutoTableRecognizer:
    """Per table, the method that measured best for its kind (docs/benchmarks/table.md): a table
    ruled both ways is read from its rules, any other by SLANet."""

    name = "auto"

    def __init__(self, ocr: OcrEngine, structure: SlanetStructure) -> None:
        self.classic = ClassicTableRecognizer(ocr)
        self.slanet = SlanetTableRecognizer(ocr, structure)

    def __call__(self, image_rgb: np.ndarray, words: list[Piece] | None = None) -> Table:
        rulings = find_rulings(image_rgb)
        chosen = self.classic if rulings.is_grid else self.slanet
        return chosen.with_rulings(image_rgb, rulings, words)


register_table_recognizer("classic", ClassicTableRecognizer)
register_table_recognizer("slanet", SlanetTableRecognizer)
register_table_recognizer("auto", AutoTableRecognizer)
