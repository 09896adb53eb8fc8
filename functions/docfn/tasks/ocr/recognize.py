"""Text recognition: PP-OCR's CTC recogniser, fed one crop at a time at its natural width.

Batching pads every crop to the widest in its batch and padding to a 320-px minimum costs time
(FIELD-NOTES); natural width, batch of one, measured fastest here with no loss of accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from ...core import imaging


def load_dictionary(path: Path) -> list[str]:
    characters = path.read_text(encoding="utf-8").splitlines()
    # Index 0 is the CTC blank; the dictionary's characters follow and a space closes the list.
    return ["<blank>", *characters, " "]


class TextRecognizer:
    def __init__(
        self,
        session: ort.InferenceSession,
        characters: list[str],
        height: int = 48,
        pad_to: int = 320,
        tail_pad: int = 24,
        max_width: int = 3200,
    ) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.characters = characters
        self.height = height
        self.pad_to = pad_to
        self.tail_pad = tail_pad
        self.max_width = max_width
        classes = session.get_outputs()[0].shape[-1]
        if isinstance(classes, int) and classes != len(characters):
            raise ValueError(
                f"recogniser predicts {classes} classes but the dictionary gives {len(characters)}"
            )

    def prepare(self, crop_bgr: np.ndarray, padded: bool = True) -> np.ndarray:
        """The network input for one crop (also what int8 calibration feeds the recogniser);
        ``padded=False``: the crop at its own width, with neither padding below."""
        h, w = crop_bgr.shape[:2]
        width = int(np.ceil(self.height * w / max(h, 1)))
        width = int(np.clip(width, 1, self.max_width))
        resized = imaging.resize_bilinear(crop_bgr, width, self.height)
        # Short crops are zero-padded (not stretched) up to ``pad_to``: the recogniser was trained on
        # padded lines and reads short tokens ("7", "\]") badly without the context.
        # A little blank after the last glyph too: CTC drops a final "." with no room behind it.
        tail, floor = (self.tail_pad, self.pad_to) if padded else (0, 0)
        tensor = np.zeros((1, 3, self.height, max(width + tail, floor)), dtype=np.float32)
        glyphs = tensor[0, :, :, :width]
        glyphs[...] = resized.transpose(2, 0, 1)  # (x / 255 - 0.5) / 0.5, in place: 3x faster
        glyphs *= 2.0 / 255.0
        glyphs -= 1.0
        return tensor

    def __call__(self, crop_bgr: np.ndarray, padded: bool = True) -> tuple[str, float]:
        tensor = self.prepare(crop_bgr, padded)
        probabilities = self.session.run(None, {self.input_name: tensor})[0][0]
        return self._decode(probabilities)

    def _decode(self, probabilities: np.ndarray) -> tuple[str, float]:
        indices = probabilities.argmax(axis=1)
        # The winners' scores picked out, not a second pass over every class (3x faster per line).
        scores = probabilities[np.arange(len(indices)), indices]
        keep = indices != 0
        keep[1:] &= indices[1:] != indices[:-1]  # collapse repeats, CTC style
        chosen = indices[keep]
        if chosen.size == 0:
            return "", 0.0
        text = "".join(self.characters[i] for i in chosen)
        return text, float(scores[keep].mean())
