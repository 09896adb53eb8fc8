"""Text detection: PP-OCR's differentiable-binarisation (DB) detector and its post-processing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import pyclipper

from ...core import imaging

_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# (x / 255 - mean) / std  ==  x * _SCALE - _OFFSET: one multiply-add per channel plane.
_SCALE = (1.0 / (255.0 * _STD)).astype(np.float32)
_OFFSET = (_MEAN / _STD).astype(np.float32)


@dataclass(frozen=True)
class TextDetectorConfig:
    limit_side_len: int = 736
    limit_type: str = "min"  # "min": upscale small sides to the limit; "max": downscale large ones.
    # With "min": a page that needed no upscaling is still downscaled to this longest side (0: never).
    # Whole pages at 150 dpi read better and faster at 1024 than at full size (docs/model-packs.md).
    max_side_len: int = 0
    # With "min": a page that needed no upscaling is scaled so that its text lines (their height
    # estimated from the page's ink, ``estimate_line_height``) are about this many pixels tall on
    # the detector's input, never upscaled (0: off, ``max_side_len`` decides). One size in pixels
    # does not fit pages of every DPI; one text height does (docs/model-packs.md).
    text_height: float = 0.0
    # With ``max_side_len``: a page whose text lines (``estimate_line_height``) would come out
    # shorter than this many pixels at the cap is detected larger, so they reach it, up to full
    # size (0: off). Small print gets a bigger input; ordinary pages keep the cap's time.
    min_text_height: float = 0.0
    thresh: float = 0.2
    box_thresh: float = 0.4
    unclip_ratio: float = 1.4
    max_candidates: int = 3000
    min_size: int = 3


def estimate_line_height(image: np.ndarray, strips: int = 4, ink: int = 170) -> float:
    """The page's typical text-line height in pixels, 0.0 when it shows no lines: the median height
    of the runs of rows holding ink, in each of ``strips`` vertical strips (so columns whose lines
    do not align are measured apart), at half resolution; runs under 3 rows (rules, specks) are
    left out. About 18 px for 10-pt text at 150 dpi; a few ms a page."""
    half = image[::2, ::2]
    dark = half.min(axis=2) < ink if half.ndim == 3 else half < ink
    width = dark.shape[1]
    runs: list[np.ndarray] = []
    for i in range(strips):
        rows = dark[:, i * width // strips : (i + 1) * width // strips].any(axis=1).view(np.int8)
        edges = np.diff(np.concatenate(([0], rows, [0])))
        lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        runs.append(lengths[lengths >= 3])
    found = np.concatenate(runs)
    return 2.0 * float(np.median(found)) if found.size else 0.0


def _resize_for_detection(image: np.ndarray, config: TextDetectorConfig) -> np.ndarray:
    height, width = image.shape[:2]
    ratio = 1.0
    line = 0.0
    capped = 0 < config.max_side_len < max(height, width)
    wants_line = config.text_height or (config.min_text_height and capped)
    if config.limit_type == "min" and min(height, width) >= config.limit_side_len and wants_line:
        line = estimate_line_height(image)
    if config.limit_type == "max" and max(height, width) > config.limit_side_len:
        ratio = config.limit_side_len / max(height, width)
    elif config.limit_type == "min" and min(height, width) < config.limit_side_len:
        ratio = config.limit_side_len / min(height, width)
    elif line > 0 and config.text_height:
        ratio = min(1.0, config.text_height / line)
    elif config.limit_type == "min" and capped:
        ratio = config.max_side_len / max(height, width)
        if line > 0 and line * ratio < config.min_text_height:
            ratio = min(1.0, config.min_text_height / line)
    # The network downsamples by 32: both sides must be multiples of it.
    new_h = max(32, int(round(height * ratio / 32) * 32))
    new_w = max(32, int(round(width * ratio / 32) * 32))
    return imaging.resize_bilinear(image, new_w, new_h)


class TextDetector:
    def __init__(self, session: ort.InferenceSession, config: TextDetectorConfig) -> None:
        self.session = session
        self.config = config
        self.input_name = session.get_inputs()[0].name

    def prepare(self, image_bgr: np.ndarray) -> np.ndarray:
        """The network input for a page (also what int8 calibration feeds the detector)."""
        resized = _resize_for_detection(image_bgr, self.config)
        # Normalise straight into the NCHW buffer, plane by plane: about 7x faster on a page than
        # broadcasting over HWC and transposing (50 ms -> 7 ms at 1248x1760, measured).
        tensor = np.empty((1, 3, *resized.shape[:2]), dtype=np.float32)
        for channel in range(3):
            np.multiply(resized[:, :, channel], _SCALE[channel], out=tensor[0, channel], casting="unsafe")
            tensor[0, channel] -= _OFFSET[channel]
        return tensor

    def __call__(self, image_bgr: np.ndarray) -> np.ndarray:
        """Quadrilaterals (N, 4, 2) in image coordinates, float32, clockwise from top-left."""
        probability = self.session.run(None, {self.input_name: self.prepare(image_bgr)})[0][0, 0]
        height, width = image_bgr.shape[:2]
        return self._boxes_from_map(probability, width, height)

    def _boxes_from_map(self, probability: np.ndarray, width: int, height: int) -> np.ndarray:
        cfg = self.config
        bitmap = (probability > cfg.thresh).astype(np.uint8)
        map_h, map_w = bitmap.shape
        contours = imaging.find_region_hulls(bitmap)
        boxes: list[np.ndarray] = []
        for contour in contours[: cfg.max_candidates]:
            points, short_side = _min_area_box(contour)
            if short_side < cfg.min_size:
                continue
            if _mean_score(probability, points) < cfg.box_thresh:
                continue
            expanded = _unclip(points, cfg.unclip_ratio)
            if expanded is None:
                continue
            box, short_side = _min_area_box(expanded)
            if short_side < cfg.min_size + 2:
                continue
            # Clip to the last pixel (not one past it) so crops never sample outside the image.
            box[:, 0] = np.clip(np.round(box[:, 0] / map_w * width), 0, width - 1)
            box[:, 1] = np.clip(np.round(box[:, 1] / map_h * height), 0, height - 1)
            boxes.append(box)
        if not boxes:
            return np.zeros((0, 4, 2), dtype=np.float32)
        return _drop_degenerate(np.array(boxes, dtype=np.float32))


def _min_area_box(contour: np.ndarray) -> tuple[np.ndarray, float]:
    rect = imaging.min_area_rect(contour)
    points = sorted(imaging.box_points(rect).tolist(), key=lambda p: p[0])
    left = sorted(points[:2], key=lambda p: p[1])
    right = sorted(points[2:], key=lambda p: p[1])
    # top-left, top-right, bottom-right, bottom-left
    ordered = np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)
    return ordered, min(rect[1])


def _mean_score(probability: np.ndarray, box: np.ndarray) -> float:
    return imaging.polygon_mean(probability, box)


def _unclip(box: np.ndarray, ratio: float) -> np.ndarray | None:
    # Grow the shrunk text kernel back by area*ratio/perimeter, as the DB paper prescribes.
    area = imaging.contour_area(box)
    perimeter = imaging.arc_length(box, closed=True)
    if perimeter == 0:
        return None
    distance = area * ratio / perimeter
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(box.astype(np.int64).tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    expanded = offset.Execute(distance)
    if len(expanded) != 1:
        return None
    return np.array(expanded[0], dtype=np.float32).reshape(-1, 1, 2)


def _drop_degenerate(boxes: np.ndarray) -> np.ndarray:
    widths = np.linalg.norm(boxes[:, 0] - boxes[:, 1], axis=1)
    heights = np.linalg.norm(boxes[:, 0] - boxes[:, 3], axis=1)
    return boxes[(widths > 3) & (heights > 3)]
