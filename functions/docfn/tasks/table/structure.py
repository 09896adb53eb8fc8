"""A recognised table (cells with spans) and its HTML and Markdown renderings."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Cell:
    row: int
    col: int
    rowspan: int = 1
    colspan: int = 1
    text: str = ""
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "col": self.col,
            "rowspan": self.rowspan,
            "colspan": self.colspan,
            "text": self.text,
            "bbox": [round(v, 1) for v in self.bbox],
        }


@dataclass
class Table:
    rows: int
    cols: int
    cells: list[Cell] = field(default_factory=list)
    method: str = ""  # how the structure was found: "rulings" or "alignment"

    def grid(self) -> list[list[Cell | None]]:
        """rows x cols: the cell anchored at each slot, None where a span covers it or nothing is."""
        slots: list[list[Cell | None]] = [[None] * self.cols for _ in range(self.rows)]
        for cell in self.cells:
            slots[cell.row][cell.col] = cell
        return slots

    def covered(self) -> set[tuple[int, int]]:
        """Slots covered by a span but not anchoring it."""
        out: set[tuple[int, int]] = set()
        for cell in self.cells:
            for r in range(cell.row, cell.row + cell.rowspan):
                for c in range(cell.col, cell.col + cell.colspan):
                    if (r, c) != (cell.row, cell.col):
                        out.add((r, c))
        return out

    def to_html(self) -> str:
        grid, covered = self.grid(), self.covered()
        parts = ["<table>"]
        for r in range(self.rows):
            parts.append("<tr>")
            for c in range(self.cols):
                if (r, c) in covered:
                    continue
                cell = grid[r][c]
                attrs = ""
                if cell is not None and cell.rowspan > 1:
                    attrs += f' rowspan="{cell.rowspan}"'
                if cell is not None and cell.colspan > 1:
                    attrs += f' colspan="{cell.colspan}"'
                parts.append(f"<td{attrs}>{html.escape(cell.text) if cell else ''}</td>")
            parts.append("</tr>")
        parts.append("</table>")
        return "".join(parts)

    def to_markdown(self) -> str:
        """GFM pipe table; Markdown has no spans, so a spanning cell's text sits in its first slot."""
        if not self.rows or not self.cols:
            return ""
        grid = self.grid()

        def text(r: int, c: int) -> str:
            cell = grid[r][c]
            value = cell.text if cell else ""
            return value.replace("|", "\\|").replace("\n", " ")

        lines = ["| " + " | ".join(text(0, c) for c in range(self.cols)) + " |"]
        lines.append("|" + "|".join(" --- " for _ in range(self.cols)) + "|")
        for r in range(1, self.rows):
            lines.append("| " + " | ".join(text(r, c) for c in range(self.cols)) + " |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "cols": self.cols,
            "method": self.method,
            "html": self.to_html(),
            "markdown": self.to_markdown(),
            "cells": [cell.to_dict() for cell in sorted(self.cells, key=lambda c: (c.row, c.col))],
        }
