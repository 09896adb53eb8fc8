"""Clean-up of raw detections before reading order: cross-class duplicates and nested boxes.

Per-class NMS leaves the detector's second opinions: the same code listing as both ``table`` and
``reference``, or one loose box spanning two columns next to the two tight ones. Kept: the most
confident of any pair where one box lies mostly inside the other.
"""

from __future__ import annotations

from ...core.geometry import intersection
from .detector import Region


def overlap_of_smaller(a: Region, b: Region) -> float:
    """Intersection over the smaller area: 1.0 when one box sits entirely inside the other."""
    smaller = min(a.area, b.area)
    return intersection(a.bbox, b.bbox) / smaller if smaller > 0 else 0.0


def dedupe(regions: list[Region], containment: float = 0.8) -> list[Region]:
    kept: list[Region] = []
    for region in sorted(regions, key=lambda r: r.score, reverse=True):
        if all(overlap_of_smaller(region, other) < containment for other in kept):
            kept.append(region)
    return kept
