"""The VLM table recogniser: MinerU2.5's "Table Recognition:" answer (OTSL) read into cells.

The answer has no cell boxes, so every cell's box is the table's (the crop's) own."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..vlm.reader import BlockReader, table_of
from .structure import Table
from .table_recognizers import register_table_recognizer
from .words import Piece

if TYPE_CHECKING:
    from ..vlm.generation import Generation


class VlmTableRecognizer:
    name = "vlm"

    def __init__(self, reader: BlockReader) -> None:
        self.reader = reader

    def __call__(self, image_rgb: np.ndarray, words: list[Piece] | None = None) -> Table:
        # The VLM reads structure and text together from the pixels; the layer's words go unused.
        return self.read_all([image_rgb])[0]

    def read_all(self, crops: list[np.ndarray]) -> list[Table]:
        """Several tables' cells, their crops submitted together so that they decode in one batch."""
        answers = self.reader.submit([(Image.fromarray(crop), "table") for crop in crops])
        return [table_in_crop(answer.result(), crop) for crop, answer in zip(crops, answers, strict=True)]


def table_in_crop(answer: Generation, crop: np.ndarray) -> Table:
    """The answer's cells, each boxed by the whole crop (the answer has no cell boxes)."""
    table = table_of(answer)
    height, width = crop.shape[:2]
    for cell in table.cells:
        cell.bbox = (0.0, 0.0, float(width), float(height))
    return table


register_table_recognizer("vlm", VlmTableRecognizer)
