"""Text pieces of a table image: OCR line boxes, split where a column rule crosses them."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...core import imaging
from ...core.geometry import area, intersection
from ...core.hyphens import SOFT_HYPHEN
from ..ocr.engine import OcrEngine


@dataclass(frozen=True)
class Piece:
    text: str
    confidence: float
    bbox: tuple[float, float, float, float]

    @property
    def cx(self) -> float:
        return (self.bbox[0] + self.bbox[2]) / 2

    @property
    def cy(self) -> float:
        return (self.bbox[1] + self.bbox[3]) / 2


def join_pieces(pieces: list[Piece]) -> str:
    """A cell's pieces as its text: top-down lines, left-right within a line (a wrapped cell reads in
    order); a piece ending in a soft hyphen (a text layer's word break) joins the next one whole."""
    out = ""
    for piece in sorted(pieces, key=lambda p: (round(p.cy / 12), p.bbox[0])):
        if out.endswith(SOFT_HYPHEN):
            out = out[:-1] + piece.text
        else:
            out = f"{out} {piece.text}" if out else piece.text
    return out[:-1] + "-" if out.endswith(SOFT_HYPHEN) else out


def _gap_splits(ink: np.ndarray, min_gap: int) -> list[int]:
    """x offsets where a line crop has a blank run of at least ``min_gap`` columns (cell gaps)."""
    blank = ~ink.any(axis=0)
    cuts, run_start = [], None
    for x, is_blank in enumerate(blank):
        if is_blank and run_start is None:
            run_start = x
        elif not is_blank and run_start is not None:
            if x - run_start >= min_gap and run_start > 0:
                cuts.append((run_start + x) // 2)
            run_start = None
    return cuts


def _snapped(ink: np.ndarray, x0: int, cuts: list[float], reach: int) -> list[int]:
    """Each cut moved to the middle of the nearest ink-free run of the line crop within ``reach``
    pixels that is wider than a letter gap (a quarter of the line height), or dropped if none."""
    blank = np.concatenate(([False], ~ink.any(axis=0), [False]))
    edges = np.flatnonzero(np.diff(blank.astype(np.int8)))
    # [start, end) of each blank run between inked columns, wide enough to part two cells
    pairs = zip(edges[0::2], edges[1::2], strict=True)
    runs = [(a, b) for a, b in pairs if a > 0 and b - a >= max(3, reach // 4)]
    out = []
    for cut in cuts:
        at = cut - x0
        near = [(max(a - at, at - b, 0), -(b - a), (a + b) // 2) for a, b in runs]
        near = [n for n in near if n[0] <= reach]
        if near:
            out.append(x0 + int(min(near)[2]))
    return out


def read_pieces(
    engine: OcrEngine,
    image_rgb: np.ndarray,
    *,
    erase: np.ndarray | None = None,
    cuts_for: Callable[[float, float], list[float]] | None = None,
    gap_factor: float = 1.2,
    min_confidence: float = 0.3,
    snap_cuts: bool = False,
) -> list[Piece]:
    """Detect text lines (rules erased first, so they neither join nor garble lines), cut each line
    box where a column rule crosses it (``cuts_for(y0, y1)``) or where it has a blank run wider than
    ``gap_factor`` x its height (the detector happily joins neighbouring cells into one line), and
    recognise every piece on its own. ``snap_cuts``: the cuts are estimates (a model's cell edges),
    so each moves to the nearest blank column within a line height, or is dropped if there is none:
    a cut never splits a glyph."""
    image = imaging.rgb_to_bgr(image_rgb)
    if erase is not None:
        # Dilate a little: anti-aliased rule edges would otherwise survive as dark hairlines.
        grown = imaging.dilate3x3(erase)
        image = image.copy()
        image[grown > 0] = 255
    gray = imaging.bgr_to_gray(image)
    height, width = image.shape[:2]
    pieces: list[Piece] = []
    for quad in engine.detector(image):
        x0, y0 = np.floor(quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        ink = gray[y0:y1, x0:x1] < 160
        wanted = [c for c in (cuts_for(y0, y1) if cuts_for else []) if x0 + 4 < c < x1 - 4]
        rule_cuts = [int(c) for c in wanted] if not snap_cuts else _snapped(ink, x0, wanted, y1 - y0)
        gap_cuts = [x0 + c for c in _gap_splits(ink, max(12, int(gap_factor * (y1 - y0))))]
        bounds = [x0, *sorted(set(rule_cuts + gap_cuts)), x1]
        for left, right in itertools.pairwise(bounds):
            columns = np.flatnonzero(ink[:, left - x0 : right - x0].any(axis=0))
            if columns.size == 0:
                continue
            # Trim the blank margins a cut leaves so the recogniser sees a tight crop.
            left, right = max(x0, left + int(columns[0]) - 4), min(x1, left + int(columns[-1]) + 5)
            crop = image[y0:y1, left:right]
            if crop.shape[1] < 4:
                continue
            text, confidence = engine.recognizer(crop)
            if text.strip() and confidence >= min_confidence:
                pieces.append(
                    Piece(text.strip(), confidence, (float(left), float(y0), float(right), float(y1)))
                )
    return _without_echoes(pieces)


def _without_echoes(pieces: list[Piece]) -> list[Piece]:
    """Drop a piece lying mostly inside a larger one whose text contains its own: the detector
    sometimes boxes a word's tail (a descender) a second time."""
    kept: list[Piece] = []
    for piece in sorted(pieces, key=lambda p: area(p.bbox), reverse=True):
        inside = [k for k in kept if intersection(piece.bbox, k.bbox) > 0.7 * max(area(piece.bbox), 1.0)]
        if not any(piece.text in k.text for k in inside):
            kept.append(piece)
    return sorted(kept, key=lambda p: (p.bbox[1], p.bbox[0]))
