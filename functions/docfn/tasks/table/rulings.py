"""Ruling lines of a table image, found with morphology (``docfn.core.imaging``), and the grid they draw.

Opening a binarised image with a long thin kernel keeps only strokes at least that long in that
direction: rules survive, glyphs do not. A separator that is missing between two neighbouring grid
slots is a spanning cell (colspan across a missing vertical piece, rowspan across a horizontal one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core import imaging


@dataclass
class Rulings:
    horizontal: np.ndarray  # uint8 mask of horizontal rules
    vertical: np.ndarray  # uint8 mask of vertical rules
    ys: list[float]  # row separators (top to bottom), including the outer frame when drawn
    xs: list[float]  # column separators (left to right)

    @property
    def is_grid(self) -> bool:
        """Both directions ruled: enough to read rows and columns from the lines alone."""
        return len(self.ys) >= 2 and len(self.xs) >= 3

    def mask(self) -> np.ndarray:
        return np.bitwise_or(self.horizontal, self.vertical)


def _cluster(values: list[float], tolerance: float) -> list[float]:
    out: list[list[float]] = []
    for value in sorted(values):
        if out and value - out[-1][-1] <= tolerance:
            out[-1].append(value)
        else:
            out.append([value])
    return [float(np.mean(group)) for group in out]


def _segments(mask: np.ndarray, horizontal: bool) -> list[tuple[float, float, float]]:
    """(position, start, end) of each connected rule piece."""
    count, _, stats, _ = imaging.connected_components_with_stats(mask, connectivity=8)
    out = []
    for x, y, w, h, _area in stats[1:count]:
        if horizontal:
            out.append((y + h / 2, float(x), float(x + w)))
        else:
            out.append((x + w / 2, float(y), float(y + h)))
    return out


def find_rulings(image_rgb: np.ndarray) -> Rulings:
    gray = imaging.rgb_to_gray(image_rgb)
    height, width = gray.shape
    # Adaptive threshold copes with shaded header rows and light-grey rules alike.
    binary = imaging.adaptive_threshold_mean(~gray, 15, -2)
    h_len = max(40, width // 30)
    v_len = max(25, height // 30)  # longer than a glyph's height at 150 dpi (cap height ~15 px)
    horizontal = imaging.open_lines(binary, h_len, horizontal=True)
    vertical = imaging.open_lines(binary, v_len, horizontal=False)
    h_segs = _segments(horizontal, True)
    v_segs = _segments(vertical, False)
    ys = _cluster([s[0] for s in h_segs], 5)
    xs = _cluster([s[0] for s in v_segs], 5)
    # A table ruled inside but not framed: its outer edges are where the other rules end.
    _close_edges(xs, h_segs)
    _close_edges(ys, v_segs)
    return Rulings(horizontal, vertical, ys, xs)


def _close_edges(positions: list[float], crossing: list[tuple[float, float, float]]) -> None:
    """Add an outer rule where the crossing rules run on more than 10 px past the last one."""
    if not crossing or not positions:
        return
    first, last = min(s[1] for s in crossing), max(s[2] for s in crossing)
    if positions[0] - first > 10:
        positions.insert(0, first)
    if last - positions[-1] > 10:
        positions.append(last)


def rule_present(mask: np.ndarray, fixed: float, start: float, end: float, *, horizontal: bool) -> bool:
    """Is a rule drawn along ``fixed`` between ``start`` and ``end`` (most of the way)?"""
    lo, hi = int(start) + 3, int(end) - 3
    if hi <= lo:
        lo, hi = int(start), int(end) + 1
    f0, f1 = max(0, int(fixed) - 3), int(fixed) + 4
    band = mask[f0:f1, lo:hi] if horizontal else mask[lo:hi, f0:f1]
    if band.size == 0:
        return False
    axis = 0 if horizontal else 1
    coverage = (band > 0).any(axis=axis).mean()
    return bool(coverage > 0.6)


def grid_spans(rulings: Rulings) -> list[tuple[int, int, int, int]]:
    """Cells of the ruled grid as (row, col, rowspan, colspan), merging across missing separators."""
    rows, cols = len(rulings.ys) - 1, len(rulings.xs) - 1
    parent = list(range(rows * cols))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        parent[find(a)] = find(b)

    ys, xs = rulings.ys, rulings.xs
    for r in range(rows):
        for c in range(cols):
            if c + 1 < cols and not rule_present(
                rulings.vertical, xs[c + 1], ys[r], ys[r + 1], horizontal=False
            ):
                union(r * cols + c, r * cols + c + 1)
            if r + 1 < rows and not rule_present(
                rulings.horizontal, ys[r + 1], xs[c], xs[c + 1], horizontal=True
            ):
                union(r * cols + c, (r + 1) * cols + c)
    groups: dict[int, list[tuple[int, int]]] = {}
    for r in range(rows):
        for c in range(cols):
            groups.setdefault(find(r * cols + c), []).append((r, c))
    spans = []
    for members in groups.values():
        r0, r1 = min(m[0] for m in members), max(m[0] for m in members)
        c0, c1 = min(m[1] for m in members), max(m[1] for m in members)
        spans.append((r0, c0, r1 - r0 + 1, c1 - c0 + 1))
    return sorted(spans)
