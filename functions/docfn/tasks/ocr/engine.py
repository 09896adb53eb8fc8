"""The OCR pipeline over one page: detect lines, crop them upright, (classify), recognise, order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ...core import imaging
from ...core.compute import shared_pool
from ...core.geometry import rows_by_vertical_overlap
from ...core.onnx_sessions import get_session
from ...packs.manifest import Manifest
from .classify import AngleClassifier
from .detect import TextDetector, TextDetectorConfig
from .recognize import TextRecognizer, load_dictionary


@dataclass(frozen=True)
class TextLine:
    text: str
    confidence: float
    polygon: list[list[float]]
    # The characters are a PDF text layer's own: a "-" ending the line is printed (a word break
    # there is a soft hyphen, U+00AD, see core.hyphens); from OCR a line-end "-" may be either.
    exact: bool = False

    @property
    def bbox(self) -> list[float]:
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        return [min(xs), min(ys), max(xs), max(ys)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "polygon": [[round(x, 1), round(y, 1)] for x, y in self.polygon],
            "bbox": [round(v, 1) for v in self.bbox],
        }


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Warp a (possibly rotated) quadrilateral to an upright rectangle."""
    width = int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3])))
    height = int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
    width, height = max(width, 1), max(height, 1)
    crop = imaging.perspective_crop(image, quad, (width, height))
    if height / width >= 1.5:  # vertical text line: read it rotated
        crop = np.rot90(crop)
    return crop


def region_canvas(
    image: np.ndarray, bbox: tuple[float, float, float, float], margin: int, side: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """A region's crop (``margin`` px of context) at native scale, padded with white to the
    detector's minimum ``side`` so it is not upscaled (a 30-px title would be blown up 25x), and the
    crop's offset in the image."""
    height, width = image.shape[:2]
    x0, y0 = max(0, int(bbox[0]) - margin), max(0, int(bbox[1]) - margin)
    x1, y1 = min(width, int(np.ceil(bbox[2])) + margin), min(height, int(np.ceil(bbox[3])) + margin)
    crop = image[y0:y1, x0:x1]
    canvas = np.full((max(y1 - y0, side), max(x1 - x0, side), 3), 255, dtype=np.uint8)
    canvas[: y1 - y0, : x1 - x0] = crop
    return canvas, (x0, y0)


def order_lines(lines: list[TextLine]) -> list[TextLine]:
    """Top-to-bottom rows, left-to-right within a row (rows = vertically overlapping lines)."""
    ordered = sorted(lines, key=lambda line: (line.bbox[1], line.bbox[0]))
    rows = rows_by_vertical_overlap(ordered, lambda line: tuple(line.bbox))
    return [line for row in rows for line in sorted(row, key=lambda item: item.bbox[0])]


def page_text(lines: list[TextLine]) -> str:
    """Lines joined in reading order; lines sharing a row are joined by a space."""
    out: list[str] = []
    previous: TextLine | None = None
    for line in lines:
        if previous is not None:
            same_row = line.bbox[1] < (previous.bbox[1] + previous.bbox[3]) / 2 < line.bbox[3]
            out.append(" " if same_row else "\n")
        out.append(line.text)
        previous = line
    return "".join(out)


def _ocr_session(model_path: Path, threads: int = 1) -> ort.InferenceSession:
    """Single-threaded by default (the page's lines are read in parallel on the compute pool
    instead), and without ONNX Runtime's memory pattern: the recogniser sees a new input width on
    nearly every line, and a pattern cached per shape only grows the process (peak RSS 285 -> 205
    MB at the same speed, measured by the lead). For the same reason the sessions share one arena grown by
    what a run requests, not one each grown by powers of two (docfn.core.onnx_sessions)."""
    return get_session(model_path, threads, mem_pattern=False, shared_arena=True)


class OcrEngine:
    """Built once per process from a verified pack directory; ``recognize_lines`` is thread-safe.

    ``threads`` is the size of the process's compute pool the page's detection and line reads run
    on (0 = the CPU quota). The line sessions are single-threaded. The detector has as many intra-op
    threads as the pool: it runs once per page and no line can start before it, so a single-threaded
    detector left every core but one idle meanwhile (one request at a time, 8 clients: 1.07-1.08 ->
    1.14-1.24 pages/s, peak RSS 294 -> 308-313 MB; issue 18).
    """

    def __init__(self, pack_dir: Path, manifest: Manifest, threads: int = 0) -> None:
        det_cfg = TextDetectorConfig(**manifest.config.get("det", {}))
        rec_cfg = manifest.config.get("rec", {})
        self.pool = shared_pool(threads)
        det_model = pack_dir / manifest.file("det").path
        self.detector = TextDetector(_ocr_session(det_model, self.pool.threads), det_cfg)
        characters = load_dictionary(pack_dir / manifest.file("rec_dict").path)
        self.recognizer = TextRecognizer(
            _ocr_session(pack_dir / manifest.file("rec").path),
            characters,
            height=rec_cfg.get("height", 48),
        )
        cls_files = [f for f in manifest.files if f.role == "cls"]
        self.classifier = AngleClassifier(_ocr_session(pack_dir / cls_files[0].path)) if cls_files else None

    def warm_up(self) -> None:
        """Each session once: a blank page (detects nothing) and a blank line crop."""
        self.detector(np.full((64, 64, 3), 255, dtype=np.uint8))
        blank_line = np.full((self.recognizer.height, 4 * self.recognizer.height, 3), 255, dtype=np.uint8)
        self.recognizer(blank_line)
        if self.classifier is not None:
            self.classifier(blank_line)

    def read_line(self, image: np.ndarray, quad: np.ndarray, use_angle_cls: bool) -> tuple[str, float]:
        crop = crop_quad(image, quad)
        if use_angle_cls and self.classifier is not None:
            crop = self.classifier(crop)
        return self.recognizer(crop)

    def recognize_lines(
        self, image_rgb: np.ndarray, *, min_confidence: float = 0.5, use_angle_cls: bool = False
    ) -> list[TextLine]:
        image = imaging.rgb_to_bgr(image_rgb)
        quads = self.pool.run(self.detector, image)
        # Longest lines first: the workers then finish together instead of one reading a long
        # line while the others idle.
        order = sorted(range(len(quads)), key=lambda i: -float(np.ptp(quads[i][:, 0])))
        reads = self.pool.map(lambda i: self.read_line(image, quads[i], use_angle_cls), order)
        by_index = dict(zip(order, reads, strict=True))
        lines: list[TextLine] = []
        for index, quad in enumerate(quads):
            text, confidence = by_index[index]
            if text.strip() and confidence >= min_confidence:
                lines.append(TextLine(text=text, confidence=confidence, polygon=quad.tolist()))
        return order_lines(lines)
