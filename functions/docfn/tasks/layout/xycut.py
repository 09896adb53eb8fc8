"""Reading order by recursive XY-cut, with multi-column bands read column by column.

Plain XY-cut cuts horizontally first wherever a whitespace gap crosses the page; on a two-column
page whose paragraph gaps happen to line up that interleaves the columns (L1, R1, L2, R2). So
consecutive horizontal bands that share a vertical gutter are merged back into one block and cut
vertically first: the left column is read to its end before the right one starts.
"""

from __future__ import annotations

from collections.abc import Sequence

Box = tuple[float, float, float, float]


def _shrink(box: Box) -> Box:
    # Detector boxes overlap their neighbours by a few pixels; without this no gap would survive.
    x0, y0, x1, y1 = box
    dx = min(4.0, (x1 - x0) * 0.1)
    dy = min(3.0, (y1 - y0) * 0.1)
    return (x0 + dx, y0 + dy, x1 - dx, y1 - dy)


def _groups(indices: list[int], boxes: Sequence[Box], axis: int, min_gap: float) -> list[list[int]]:
    """Split ``indices`` at gaps of at least ``min_gap`` in the projection on ``axis`` (0=x, 1=y)."""
    spans = sorted(indices, key=lambda i: _shrink(boxes[i])[axis])
    groups: list[list[int]] = []
    reach = float("-inf")
    for i in spans:
        box = _shrink(boxes[i])
        start, end = box[axis], box[axis + 2]
        if groups and start < reach + min_gap:
            groups[-1].append(i)
            reach = max(reach, end)
        else:
            groups.append([i])
            reach = end
    return groups


def _order(indices: list[int], boxes: Sequence[Box], gutter: float) -> list[int]:
    if len(indices) <= 1:
        return list(indices)
    bands = _groups(indices, boxes, axis=1, min_gap=0.0)
    if len(bands) == 1:
        columns = _groups(indices, boxes, axis=0, min_gap=gutter)
        if len(columns) == 1:  # no cut either way (overlapping boxes): top-down, then left-right
            return sorted(indices, key=lambda i: (boxes[i][1], boxes[i][0]))
        return [i for column in columns for i in _order(column, boxes, gutter)]
    out: list[int] = []
    k = 0
    while k < len(bands):
        block = list(bands[k])
        # Extend the block while the bands below keep a common vertical gutter with it.
        if len(_groups(block, boxes, axis=0, min_gap=gutter)) > 1:
            while k + 1 < len(bands):
                # Only a band that is itself split continues the columns; a lone full-line box
                # (a heading under the left column) ends them.
                if len(_groups(bands[k + 1], boxes, axis=0, min_gap=gutter)) < 2:
                    break
                merged = block + bands[k + 1]
                if len(_groups(merged, boxes, axis=0, min_gap=gutter)) < 2:
                    break
                block = merged
                k += 1
        k += 1
        if len(block) < len(indices):
            out.extend(_order(block, boxes, gutter))
        else:  # every band merged: the whole block is multi-column, so cut it into columns
            columns = _groups(block, boxes, axis=0, min_gap=gutter)
            out.extend(i for column in columns for i in _order(column, boxes, gutter))
    return out


def xy_cut_order(boxes: Sequence[Box], page_width: float) -> list[int]:
    """Indices of ``boxes`` in reading order (top-down; multi-column blocks column by column)."""
    gutter = max(4.0, page_width * 0.005)
    return _order(list(range(len(boxes))), boxes, gutter)
