"""PP-PicoDet layout detection (the CDLA model): preprocessing, box decoding and per-class NMS.

The exported graph stops before post-processing: for each of the four strides (8, 16, 32, 64) it
returns per-anchor class scores (already sigmoid) and a GFL box distribution (4 sides x 8 bins).
Decoding = expected value of each side's distribution x stride, around the anchor's centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from ...core import imaging

# CDLA's ten labels -> the region types docfn reports ("equation" is a display formula).
CDLA_TYPES: dict[str, str] = {
    "text": "text",
    "title": "title",
    "figure": "figure",
    "figure_caption": "figure_caption",
    "table": "table",
    "table_caption": "table_caption",
    "header": "header",
    "footer": "footer",
    "reference": "reference",
    "equation": "formula",
}
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_SCALE, _SHIFT = 1.0 / (255.0 * _STD), _MEAN / _STD
_STRIDES = (8, 16, 32, 64)


@dataclass(frozen=True)
class Region:
    type: str
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1 in page pixels
    score: float

    @property
    def width(self) -> float:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> float:
        return self.bbox[3] - self.bbox[1]

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)


@dataclass(frozen=True)
class LayoutDetectorConfig:
    input_size: tuple[int, int] = (800, 608)  # (height, width) the graph was exported with
    score_threshold: float = 0.5
    nms_iou: float = 0.5
    max_candidates: int = 1000  # per stride, before NMS
    rgb: bool = True


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


class LayoutDetector:
    """Thread-safe: holds only an ONNX session (whose ``run`` is thread-safe) and constants."""

    def __init__(
        self, session: ort.InferenceSession, labels: list[str], config: LayoutDetectorConfig
    ) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.labels = labels
        self.config = config

    def preprocess(self, image_rgb: np.ndarray) -> np.ndarray:
        height, width = self.config.input_size
        # A plain stretch, no letterbox: PaddleDetection trains PicoDet with Resize(keep_ratio=False).
        resized = imaging.resize_bilinear(image_rgb, width, height)
        if not self.config.rgb:
            resized = resized[:, :, ::-1]
        # (x / 255 - mean) / std as one multiply-add per channel plane, written in place.
        tensor = np.empty((1, 3, height, width), dtype=np.float32)
        for channel in range(3):
            plane = tensor[0, channel]
            np.multiply(resized[:, :, channel], _SCALE[channel], out=plane, dtype=np.float32)
            plane -= _SHIFT[channel]
        return tensor

    def decode(
        self, outputs: list[np.ndarray], min_score: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw outputs -> (boxes Nx4 in model-input pixels, scores NxC); ``min_score``: only the
        candidates whose best class scores at least that (the rest are not decoded)."""
        height, width = self.config.input_size
        levels = len(outputs) // 2
        boxes, scores = [], []
        for level, stride in enumerate(_STRIDES[:levels]):
            score = outputs[level][0]
            dist = outputs[level + levels][0]
            rows, cols = int(np.ceil(height / stride)), int(np.ceil(width / stride))
            ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
            cx = (xs.reshape(-1) + 0.5) * stride
            cy = (ys.reshape(-1) + 0.5) * stride
            best = score.max(axis=1)
            top = np.argsort(best)[::-1][: self.config.max_candidates]
            if min_score is not None:
                top = top[best[top] >= min_score]
            bins = dist.shape[1] // 4
            probs = _softmax(dist[top].reshape(-1, 4, bins))
            sides = (probs * np.arange(bins, dtype=np.float32)).sum(axis=-1) * stride  # l, t, r, b
            centre = np.stack([cx[top], cy[top]], axis=1)
            boxes.append(np.concatenate([centre - sides[:, :2], centre + sides[:, 2:]], axis=1))
            scores.append(score[top])
        return np.concatenate(boxes), np.concatenate(scores)

    def __call__(self, image_rgb: np.ndarray, score_threshold: float | None = None) -> list[Region]:
        outputs = self.session.run(None, {self.input_name: self.preprocess(image_rgb)})
        page_h, page_w = image_rgb.shape[:2]
        return self.regions(outputs, (page_w, page_h), score_threshold)

    def regions(
        self, outputs: list[np.ndarray], page_size: tuple[int, int], score_threshold: float | None = None
    ) -> list[Region]:
        """The graph's raw outputs -> regions in the pixels of a page of ``page_size`` (width, height)."""
        threshold = self.config.score_threshold if score_threshold is None else score_threshold
        page_w, page_h = page_size
        boxes, scores = self.decode(outputs, threshold)
        classes = scores.argmax(axis=1)
        best = scores[np.arange(len(scores)), classes]
        keep = best >= threshold
        boxes, classes, best = boxes[keep], classes[keep], best[keep]
        if not len(boxes):
            return []
        in_h, in_w = self.config.input_size
        boxes = boxes * np.array([page_w / in_w, page_h / in_h] * 2, dtype=np.float32)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, page_w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, page_h)
        # Suppression only within a class: CDLA's classes may legitimately nest.
        kept = imaging.nms_per_class(boxes, best, classes, threshold, self.config.nms_iou)
        regions = []
        for i in np.asarray(kept).reshape(-1):
            label = self.labels[int(classes[i])]
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            if x1 - x0 >= 2 and y1 - y0 >= 2:
                regions.append(Region(CDLA_TYPES.get(label, label), (x0, y0, x1, y1), float(best[i])))
        return regions
