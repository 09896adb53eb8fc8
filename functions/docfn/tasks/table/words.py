"""Text pieces of a table image: OCR line boxes, split where a column rule crosses them."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...core import imaging
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


def read_pieces(
    engine: OcrEngine,
    image_rgb: np.ndarray,
    *,
    erase: np.ndarray | None = None,
    cuts_for: Callable[[float, float], list[float]] | None = None,
    gap_factor: float = 1.2,
    min_confidence: float = 0.3,
) -> list[Piece]:
    """Detect text lines (rules erased first, so they neither join nor garble lines), cut each line
    box where a column rule crosses it (``cuts_for(y0, y1)``) or where it has a blank run wider than
    ``gap_factor`` x its height (the detector happily joins neighbouring cells into one line), and
    recognise every piece on its own."""
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
        rule_cuts = [int(c) for c in (cuts_for(y0, y1) if cuts_for else []) if x0 + 4 < c < x1 - 4]
        ink = gray[y0:y1, x0:x1] < 160
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
    return pieces
