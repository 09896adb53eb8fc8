"""Optional 0/180-degree text-line classifier (PP-OCR cls). Off by default: on upright typeset
pages it made CER worse (measured, see docs/ocr-model-choice.md)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from ...core import imaging


class AngleClassifier:
    def __init__(self, session: ort.InferenceSession, threshold: float = 0.9) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.threshold = threshold

    def __call__(self, crop_bgr: np.ndarray) -> np.ndarray:
        height, width = 48, 192
        h, w = crop_bgr.shape[:2]
        resized_w = min(width, int(np.ceil(height * w / max(h, 1))))
        resized = imaging.resize_bilinear(crop_bgr, max(1, resized_w), height).astype(np.float32)
        tensor = np.zeros((3, height, width), dtype=np.float32)
        tensor[:, :, :resized_w] = ((resized / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
        scores = self.session.run(None, {self.input_name: tensor[np.newaxis]})[0][0]
        if int(scores.argmax()) == 1 and float(scores[1]) > self.threshold:
            return imaging.rotate180(crop_bgr)
        return crop_bgr
