"""Axis-aligned boxes on a page: the few geometric facts every task shares.

A box is ``(x0, y0, x1, y1)`` in page pixels, x to the right and y down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

Box = tuple[float, float, float, float]
T = TypeVar("T")


def intersection(a: Box | tuple[float, ...], b: Box | tuple[float, ...]) -> float:
    """Area shared by two boxes (0 when they do not touch)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, width) * max(0.0, height)


def area(box: Box | tuple[float, ...]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def enclosing(boxes: Iterable[Box | tuple[float, ...]]) -> Box:
    """The smallest box holding every box given (at least one)."""
    x0s, y0s, x1s, y1s = zip(*boxes, strict=True)
    return (min(x0s), min(y0s), max(x1s), max(y1s))


def normalised_bbox(bbox: Box, width: int, height: int) -> list[int]:
    """A box on MinerU's 0-1000 grid of the page."""
    x0, y0, x1, y1 = bbox
    return [
        round(x0 * 1000 / width),
        round(y0 * 1000 / height),
        round(x1 * 1000 / width),
        round(y1 * 1000 / height),
    ]


def rows_by_vertical_overlap(
    items: Iterable[T], bbox: Callable[[T], Box | tuple[float, ...]]
) -> list[list[T]]:
    """Group items, given top-down, into rows: an item joins the current row when its vertical
    centre lies within the row's extent so far, else it starts a new row.

    OCR lines of one visual line, and table pieces of one table row, differ by a few pixels in their
    top edges; their centres still fall inside each other's extent.
    """
    rows: list[list[T]] = []
    top = bottom = 0.0
    for item in items:
        box = bbox(item)
        centre = (box[1] + box[3]) / 2
        if rows and top <= centre <= bottom:
            rows[-1].append(item)
            top, bottom = min(top, box[1]), max(bottom, box[3])
            continue
        rows.append([item])
        top, bottom = box[1], box[3]
    return rows
