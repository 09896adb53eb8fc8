"""The VLM table recogniser: MinerU2.5's "Table Recognition:" answer (OTSL) read into cells.

The answer has no cell boxes, so every cell's box is the table's (the crop's) own."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..vlm.reader import BlockReader
from .structure import Table
from .table_recognizers import register_table_recognizer
from .words import Piece


class VlmTableRecognizer:
    name = "vlm"

    def __init__(self, reader: BlockReader) -> None:
        self.reader = reader

    def __call__(self, image_rgb: np.ndarray, words: list[Piece] | None = None) -> Table:
        # The VLM reads structure and text together from the pixels; the layer's words go unused.
        table = self.reader.table(Image.fromarray(image_rgb))
        height, width = image_rgb.shape[:2]
        for cell in table.cells:
            cell.bbox = (0.0, 0.0, float(width), float(height))
        return table


register_table_recognizer("vlm", VlmTableRecognizer)
