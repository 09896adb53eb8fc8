"""Where the tables on a page are: the layout model's table regions, or, when there are none and the
image is itself a table crop, the one object filling it (the layout model calls ruled crops a table
and borderless ones a figure)."""

from __future__ import annotations

from ...core.geometry import area
from ..layout.analyzer import OrderedRegion

Box = tuple[float, float, float, float]
# Region types that make an image a page of prose rather than one object.
_PROSE = {"text", "title", "reference", "header", "footer"}


def table_boxes(regions: list[OrderedRegion], width: int, height: int) -> tuple[list[Box], bool]:
    """(boxes, guessed): the table regions in reading order; else, guessed, the whole image when it
    looks like a table crop: one object covers at least half of it (a caption line beside it may be
    prose; the object's box can miss a header row above a rule, so the whole image is taken) or
    nothing was found at all. A guess is kept only if it reads as a grid (the task checks)."""
    tables = [tuple(r.region.bbox) for r in regions if r.region.type == "table"]
    if tables:
        return tables, False  # type: ignore[return-value]
    whole: Box = (0.0, 0.0, float(width), float(height))
    objects = [r.region for r in regions if r.region.type not in _PROSE]
    large = [o for o in objects if area(o.bbox) >= 0.5 * area(whole)]
    if not regions or len(large) == 1:
        return [whole], True
    return [], False


def padded(box: Box, width: int, height: int, margin: int) -> tuple[int, int, int, int]:
    """``box`` grown by ``margin`` pixels (layout boxes hug the ink; the recognisers want a border)."""
    x0, y0, x1, y1 = box
    return (
        max(0, int(x0) - margin),
        max(0, int(y0) - margin),
        min(width, int(x1 + 0.999) + margin),
        min(height, int(y1 + 0.999) + margin),
    )
