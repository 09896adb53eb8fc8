"""A table's cells read from a PDF's own text layer: the layer's words as table pieces, and OCR only
for cells where the layer has nothing although the image shows ink (text drawn as a picture).

The structure (rows, columns, spans, cell boxes) still comes from the rules or SLANet; only where
each cell's text comes from changes: characters the PDF states exactly beat reading them again.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ...core import imaging
from ...core.hyphens import SOFT_HYPHEN
from ...core.text_layer import TextLayerWord
from ..ocr.engine import OcrEngine
from .structure import Table
from .words import Piece, join_pieces, read_pieces

Box = tuple[float, float, float, float]
# Dark pixels (below this grey) left in an empty cell once the layer's words and the rules are
# whitened, above which the cell shows something the layer lacks and is OCR'd.
_INK_LEVEL = 160
MIN_INK_PIXELS = 24
_WORD_MARGIN = 2  # px whitened around a layer word's box: anti-aliased edges
_CELL_INSET = 2  # px a cell's box is shrunk by before looking for ink: its own rules


def layer_pieces(words: Iterable[TextLayerWord], crop_box: Box) -> list[Piece]:
    """The words whose centre lies in ``crop_box`` (page pixels), as pieces in the crop's pixels."""
    x0, y0, x1, y1 = crop_box
    pieces = []
    for word in words:
        cx, cy = (word.bbox[0] + word.bbox[2]) / 2, (word.bbox[1] + word.bbox[3]) / 2
        if x0 <= cx < x1 and y0 <= cy < y1:
            box = (word.bbox[0] - x0, word.bbox[1] - y0, word.bbox[2] - x0, word.bbox[3] - y0)
            pieces.append(Piece(word.text, 1.0, box))
    return pieces


def phrases(words: list[Piece], gap: float = 0.6) -> list[Piece]:
    """Words joined into runs along a row while the space between them is under ``gap`` x their
    height: what OCR would box as one piece. A cell's text is one phrase; the space between cells is
    wider (tbl: 3 ens), so a phrase stays in one cell even where a model's cell boxes are loose."""
    out: list[Piece] = []
    for word in sorted(words, key=lambda w: (w.bbox[1], w.bbox[0])):
        height = word.bbox[3] - word.bbox[1]
        host = next(
            (
                p
                for p in reversed(out)
                if abs(p.cy - word.cy) < 0.5 * height and 0 <= word.bbox[0] - p.bbox[2] < gap * height
            ),
            None,
        )
        if host is None:
            out.append(word)
            continue
        joined = host.text[:-1] + word.text if host.text.endswith(SOFT_HYPHEN) else f"{host.text} {word.text}"
        box = (host.bbox[0], min(host.bbox[1], word.bbox[1]), word.bbox[2], max(host.bbox[3], word.bbox[3]))
        out[out.index(host)] = Piece(joined, 1.0, box)
    return out


def _without_known_ink(image_rgb: np.ndarray, words: list[Piece], erase: np.ndarray | None) -> np.ndarray:
    """The table image with the layer's words and the rules painted white: what is left is ink
    the layer does not account for."""
    out = image_rgb.copy()
    if erase is not None:
        out[imaging.dilate3x3(erase) > 0] = 255
    height, width = out.shape[:2]
    for word in words:
        x0, y0, x1, y1 = word.bbox
        out[
            max(0, int(y0) - _WORD_MARGIN) : min(height, int(np.ceil(y1)) + _WORD_MARGIN),
            max(0, int(x0) - _WORD_MARGIN) : min(width, int(np.ceil(x1)) + _WORD_MARGIN),
        ] = 255
    return out


def read_empty_cells(
    ocr: OcrEngine, image_rgb: np.ndarray, table: Table, words: list[Piece], erase: np.ndarray | None
) -> int:
    """OCR each cell the layer left empty whose box shows ink beyond the layer's words and the rules;
    returns how many cells were OCR'd (0 on a born-digital table: no OCR at all)."""
    empty = [cell for cell in table.cells if not cell.text]
    if not empty:
        return 0
    rest = _without_known_ink(image_rgb, words, erase)
    gray = imaging.bgr_to_gray(imaging.rgb_to_bgr(rest))
    height, width = gray.shape
    read = 0
    for cell in empty:
        x0, y0 = max(0, int(cell.bbox[0]) + _CELL_INSET), max(0, int(cell.bbox[1]) + _CELL_INSET)
        x1 = min(width, int(np.ceil(cell.bbox[2])) - _CELL_INSET)
        y1 = min(height, int(np.ceil(cell.bbox[3])) - _CELL_INSET)
        if x1 - x0 < 4 or y1 - y0 < 4 or int((gray[y0:y1, x0:x1] < _INK_LEVEL).sum()) < MIN_INK_PIXELS:
            continue
        cell.text = join_pieces(read_pieces(ocr, np.ascontiguousarray(rest[y0:y1, x0:x1])))
        read += 1
    return read
