"""Text pieces of a table image: OCR line boxes, split where a column rule crosses them."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

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


def read_pieces(
    engine: OcrEngine,
    image_rgb: np.ndarray,
    *,
    erase: np.ndarray | None = None,
    cuts: list[float] | None = None,
    min_confidence: float = 0.3,
) -> list[Piece]:
    """Detect text lines (rules erased first, so they neither join nor garble lines), cut each line
    box at the column separators it crosses and recognise every piece on its own."""
    image = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    if erase is not None:
        # Dilate a little: anti-aliased rule edges would otherwise survive as dark hairlines.
        grown = cv2.dilate(erase, np.ones((3, 3), np.uint8))
        image = image.copy()
        image[grown > 0] = 255
    height, width = image.shape[:2]
    pieces: list[Piece] = []
    for quad in engine.detector(image):
        x0, y0 = np.floor(quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        bounds = [x0, *[int(c) for c in (cuts or []) if x0 + 4 < c < x1 - 4], x1]
        for left, right in zip(bounds, bounds[1:], strict=False):
            crop = image[y0:y1, left:right]
            if crop.shape[0] < 4 or crop.shape[1] < 4:
                continue
            text, confidence = engine.recognizer(crop)
            if text.strip() and confidence >= min_confidence:
                pieces.append(Piece(text.strip(), confidence, (float(left), float(y0), float(right), float(y1))))
    return pieces
