"""SLANet-plus (PaddleOCR's table structure model) in numpy + ONNX Runtime: a table image to the
grid of its cells, each with a box on the image.

The model reads the image with its longest side scaled to 488 px, normalised with ImageNet's mean and
std (in BGR order, as PaddleOCR feeds it) and padded with zeros to 488 x 488. It answers, per decoding
step, a structure token (``<tr>``, ``<td></td>``, ``<td``, `` colspan="2"``, ``>``, ``</td>``, ...)
and, for the steps that open a cell, the cell's four corners normalised to the padded square. The
token list is the model's own (ONNX metadata ``character``), framed by ``sos`` and ``eos``; as in
PaddleOCR's decoder ``<td></td>`` stands for an empty cell and the bare ``<td>`` is not a token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ...core import imaging
from ...core.onnx_sessions import get_session
from ...packs.manifest import Manifest

# The pack role of SLANet in the tasks that load it (table, parse): DOCFN_TABLE_STRUCTURE_MODEL_URI.
STRUCTURE_PACK = "table_structure"
_SPAN = re.compile(r'(rowspan|colspan)="?(\d+)"?')
# Tokens that open a cell; the box of a cell is the one predicted at its opening step.
_OPENS_CELL = frozenset({"<td></td>", "<td"})


@dataclass(frozen=True)
class GridCell:
    """One cell of the predicted structure: its slot, its spans and its box on the image."""

    row: int
    col: int
    rowspan: int
    colspan: int
    bbox: tuple[float, float, float, float]


def structure_tokens(session: ort.InferenceSession) -> list[str]:
    """The decoder's vocabulary, index by index, from the model's metadata."""
    characters = session.get_modelmeta().custom_metadata_map["character"].splitlines()
    if "<td></td>" not in characters:
        characters.append("<td></td>")
    if "<td>" in characters:
        characters.remove("<td>")
    return ["sos", *characters, "eos"]


def grid_from_tokens(
    tokens: list[str], boxes: list[tuple[float, float, float, float]]
) -> tuple[int, int, list[GridCell]]:
    """(rows, cols, cells) from a structure token sequence; ``boxes`` holds one box per opened cell.

    Rows are ``<tr>`` … ``</tr>``; a cell takes the first slot of its row not covered by a rowspan
    from a row above (the HTML table model)."""
    cells: list[GridCell] = []
    covered: set[tuple[int, int]] = set()
    row, col, opened = -1, 0, 0
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "<tr>":
            row, col = row + 1, 0
        elif token in _OPENS_CELL:
            spans = {"rowspan": 1, "colspan": 1}
            if token == "<td":  # attributes follow until ">"
                while i + 1 < len(tokens) and tokens[i + 1] != ">":
                    i += 1
                    match = _SPAN.search(tokens[i])
                    if match:
                        spans[match.group(1)] = max(1, int(match.group(2)))
            row = max(row, 0)  # a cell before any <tr> still belongs to the first row
            while (row, col) in covered:
                col += 1
            box = boxes[opened] if opened < len(boxes) else (0.0, 0.0, 0.0, 0.0)
            opened += 1
            cells.append(GridCell(row, col, spans["rowspan"], spans["colspan"], box))
            for r in range(row, row + spans["rowspan"]):
                for c in range(col, col + spans["colspan"]):
                    covered.add((r, c))
            col += spans["colspan"]
        i += 1
    rows = max((c.row + c.rowspan for c in cells), default=0)
    cols = max((c.col + c.colspan for c in cells), default=0)
    return rows, cols, cells


class SlanetStructure:
    """Built once per process from a verified ``table-slanet-plus`` pack; ``__call__`` is thread-safe."""

    def __init__(self, pack_dir: Path, manifest: Manifest, threads: int = 0) -> None:
        config = manifest.config
        self.max_side = int(config.get("max_side", 488))
        self.mean = np.array(config.get("mean", [0.485, 0.456, 0.406]), dtype=np.float32)
        self.std = np.array(config.get("std", [0.229, 0.224, 0.225]), dtype=np.float32)
        self.session = get_session(pack_dir / manifest.file("structure").path, threads)
        self.tokens = structure_tokens(self.session)
        self.input_name = self.session.get_inputs()[0].name

    def preprocess(self, image_rgb: np.ndarray) -> np.ndarray:
        height, width = image_rgb.shape[:2]
        ratio = self.max_side / max(height, width)
        resized = imaging.resize_bilinear(
            imaging.rgb_to_bgr(image_rgb), max(1, int(width * ratio)), max(1, int(height * ratio))
        )
        normalised = (resized.astype(np.float32) / 255.0 - self.mean) / self.std
        padded = np.zeros((self.max_side, self.max_side, 3), dtype=np.float32)
        padded[: normalised.shape[0], : normalised.shape[1]] = normalised
        return padded.transpose(2, 0, 1)[np.newaxis]

    def __call__(self, image_rgb: np.ndarray) -> tuple[int, int, list[GridCell]]:
        """(rows, cols, cells) of the table in ``image_rgb``, cell boxes in its pixels."""
        height, width = image_rgb.shape[:2]
        loc, probs = self.session.run(None, {self.input_name: self.preprocess(image_rgb)})
        # Corners come normalised to the padded square, whose side is the image's longest side.
        side = float(max(height, width))
        end = len(self.tokens) - 1
        tokens: list[str] = []
        boxes: list[tuple[float, float, float, float]] = []
        for step, index in enumerate(probs[0].argmax(axis=1)):
            if index == end and step > 0:
                break
            if index in (0, end):
                continue
            token = self.tokens[int(index)]
            if token in _OPENS_CELL:
                corners = loc[0, step].reshape(4, 2) * side
                xs = np.clip(corners[:, 0], 0, width)
                ys = np.clip(corners[:, 1], 0, height)
                boxes.append((float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())))
            tokens.append(token)
        return grid_from_tokens(tokens, boxes)
