"""One page -> typed regions in reading order: detect, de-duplicate, order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...core.onnx_sessions import get_session
from ...packs.manifest import Manifest
from .detector import LayoutDetector, LayoutDetectorConfig, Region
from .regions import dedupe
from .xycut import xy_cut_order


@dataclass(frozen=True)
class OrderedRegion:
    region: Region
    order: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.region.type,
            "bbox": [round(v, 1) for v in self.region.bbox],
            "score": round(self.region.score, 4),
            "order": self.order,
        }


def _row_then_x(region: Region) -> tuple[int, float]:
    # Boxes on one line differ by a pixel or two in top edge; bucket rows so x decides.
    return int(region.bbox[1] // 20), region.bbox[0]


class LayoutAnalyzer:
    def __init__(self, pack_dir: Path, manifest: Manifest, threads: int = 0) -> None:
        config = manifest.config
        detector_config = LayoutDetectorConfig(
            input_size=tuple(config.get("input_size", (800, 608))),  # type: ignore[arg-type]
            score_threshold=float(config.get("score_threshold", 0.5)),
            nms_iou=float(config.get("nms_iou", 0.5)),
        )
        session = get_session(pack_dir / manifest.file("layout").path, threads)
        self.detector = LayoutDetector(session, list(config["labels"]), detector_config)

    def warm_up(self) -> None:
        """The detector once, on a blank page (its input size is fixed: a full-cost run)."""
        self.detector(np.full((64, 64, 3), 255, dtype=np.uint8), None)

    def __call__(self, image_rgb: np.ndarray, score_threshold: float | None = None) -> list[OrderedRegion]:
        regions = dedupe(self.detector(image_rgb, score_threshold))
        return order_regions(regions, page_width=image_rgb.shape[1])


def order_regions(regions: list[Region], page_width: float) -> list[OrderedRegion]:
    """Running headers first, the body by XY-cut, footers last."""
    # Page furniture is ordered apart from the body: a running header beside the first
    # paragraph would otherwise look like a column to XY-cut.
    headers = sorted((r for r in regions if r.type == "header"), key=_row_then_x)
    footers = sorted((r for r in regions if r.type == "footer"), key=_row_then_x)
    body = [r for r in regions if r.type not in {"header", "footer"}]
    order = xy_cut_order([r.bbox for r in body], page_width=page_width)
    ranked = headers + [body[i] for i in order] + footers
    return [OrderedRegion(region, rank) for rank, region in enumerate(ranked)]
