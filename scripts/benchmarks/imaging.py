"""Imaging benchmark: docfn's pipelines on OpenCV (today) vs on docfn.core.imaging (numpy + Pillow).

The pipeline code is not edited: each variant swaps the ``cv2`` name inside every loaded docfn
module for either OpenCV itself or a facade that answers the same calls with docfn.core.imaging.
Both are wrapped in the same timing proxy, so the time spent in image operations is measured per
operation, alongside the end-to-end time per page. Variants run interleaved page by page in one
process (timings on shared machines drift), after one page of warm-up each.

Reported on the devset (tests/data/devset): OCR CER (NFKC, whitespace removed, as docfn.core.textmetrics) and
s/page; agreement of the DB text boxes; layout region agreement (same class, IoU); table rulings
agreement on the devset's table page (masks, separators, grid, recognised HTML); PNG encoding.
Writes imaging.{json,md}. ``--pages`` always keeps pages 003 and the table page (the single
operations are timed on them); ``--quick``: those two pages, one round.

docfn's modules no longer import ``cv2`` (the move this benchmark decided is done), so in a run
today every variant's pipeline is docfn.core.imaging: only the single operations and the PNG
encoding still set OpenCV beside it. docs/benchmarks/imaging.md is the run that decided the move.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyclipper
from PIL import Image

from benchmarks import harness
from docfn.core import imaging
from docfn.core.textmetrics import cer, edit_distance, normalise
from docfn.packs.manifest import verify_pack
from docfn.tasks.layout.analyzer import LayoutAnalyzer
from docfn.tasks.layout.detector import Region
from docfn.tasks.ocr.engine import OcrEngine, page_text
from docfn.tasks.table import rulings as rulings_module
from docfn.tasks.table.table_recognizers import table_recognizer
from docfn.tooling.build import build_packs

OCR_PACK, LAYOUT_PACK = "ocr-ppocrv6-tiny", "layout-cdla"

# --------------------------------------------------------------------------------------------------
# The two backends behind the name ``cv2``


class Cv2OnImaging:
    """The slice of OpenCV's API docfn calls, answered by docfn.core.imaging."""

    # OpenCV's own constant values, so code comparing or passing them behaves the same.
    INTER_LINEAR = cv2.INTER_LINEAR
    INTER_CUBIC = cv2.INTER_CUBIC
    BORDER_REPLICATE = cv2.BORDER_REPLICATE
    RETR_LIST = cv2.RETR_LIST
    CHAIN_APPROX_SIMPLE = cv2.CHAIN_APPROX_SIMPLE
    COLOR_RGB2BGR = cv2.COLOR_RGB2BGR
    COLOR_BGR2RGB = cv2.COLOR_BGR2RGB
    COLOR_RGB2GRAY = cv2.COLOR_RGB2GRAY
    COLOR_BGR2GRAY = cv2.COLOR_BGR2GRAY
    ROTATE_180 = cv2.ROTATE_180
    ADAPTIVE_THRESH_MEAN_C = cv2.ADAPTIVE_THRESH_MEAN_C
    THRESH_BINARY = cv2.THRESH_BINARY
    MORPH_OPEN = cv2.MORPH_OPEN
    MORPH_RECT = cv2.MORPH_RECT

    def __init__(self, *, antialias: bool = False, warp: str = "bilinear") -> None:
        self.antialias = antialias
        self.warp = warp
        self.dnn = _Dnn()

    def resize(self, image: np.ndarray, dsize: tuple[int, int], interpolation: int = cv2.INTER_LINEAR) -> Any:
        if interpolation != cv2.INTER_LINEAR:
            raise NotImplementedError(f"interpolation {interpolation}")
        return imaging.resize_bilinear(image, int(dsize[0]), int(dsize[1]), antialias=self.antialias)

    def findContours(self, image: np.ndarray, mode: int, method: int) -> tuple[list[np.ndarray], None]:
        return imaging.find_region_hulls(image), None

    def minAreaRect(self, points: np.ndarray) -> imaging.RotatedRect:
        return imaging.min_area_rect(points)

    def boxPoints(self, rect: imaging.RotatedRect) -> np.ndarray:
        return imaging.box_points(rect)

    def fillPoly(self, mask: np.ndarray, polygons: Any, color: float) -> None:
        for polygon in polygons:
            imaging.fill_polygon(mask, polygon, color)

    def mean(self, values: np.ndarray, mask: np.ndarray) -> tuple[float, float, float, float]:
        return (imaging.masked_mean(values, mask), 0.0, 0.0, 0.0)

    def contourArea(self, points: np.ndarray) -> float:
        return imaging.contour_area(points)

    def arcLength(self, points: np.ndarray, closed: bool) -> float:
        return imaging.arc_length(points, closed)

    def getPerspectiveTransform(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        return imaging.perspective_transform(src, dst)

    def warpPerspective(
        self,
        image: np.ndarray,
        matrix: np.ndarray,
        dsize: tuple[int, int],
        flags: int = cv2.INTER_LINEAR,
        borderMode: int = cv2.BORDER_REPLICATE,
    ) -> np.ndarray:
        if borderMode != cv2.BORDER_REPLICATE:
            raise NotImplementedError(f"borderMode {borderMode}")
        resample = self.warp if flags == cv2.INTER_CUBIC else "bilinear"
        return imaging.warp_perspective(image, matrix, dsize, resample=resample)  # type: ignore[arg-type]

    def cvtColor(self, image: np.ndarray, code: int) -> np.ndarray:
        if code in (cv2.COLOR_RGB2BGR, cv2.COLOR_BGR2RGB):
            return imaging.rgb_to_bgr(image)
        if code == cv2.COLOR_RGB2GRAY:
            return imaging.rgb_to_gray(image)
        if code == cv2.COLOR_BGR2GRAY:
            return imaging.bgr_to_gray(image)
        raise NotImplementedError(f"colour conversion {code}")

    def rotate(self, image: np.ndarray, code: int) -> np.ndarray:
        if code != cv2.ROTATE_180:
            raise NotImplementedError(f"rotation {code}")
        return imaging.rotate180(image)

    def adaptiveThreshold(
        self, src: np.ndarray, max_value: float, method: int, kind: int, block_size: int, c: float
    ) -> np.ndarray:
        if method != cv2.ADAPTIVE_THRESH_MEAN_C or kind != cv2.THRESH_BINARY:
            raise NotImplementedError("only ADAPTIVE_THRESH_MEAN_C with THRESH_BINARY")
        return imaging.adaptive_threshold_mean(src, block_size, c, int(max_value))

    def getStructuringElement(self, shape: int, ksize: tuple[int, int]) -> np.ndarray:
        if shape != cv2.MORPH_RECT:
            raise NotImplementedError(f"structuring element {shape}")
        return np.ones((ksize[1], ksize[0]), dtype=np.uint8)

    def morphologyEx(self, src: np.ndarray, op: int, kernel: np.ndarray) -> np.ndarray:
        rows, cols = kernel.shape
        if op != cv2.MORPH_OPEN or min(rows, cols) != 1:
            raise NotImplementedError("only MORPH_OPEN with a 1-D line")
        return imaging.open_lines(src, max(rows, cols), horizontal=rows == 1)

    def bitwise_or(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.bitwise_or(a, b)

    def connectedComponentsWithStats(self, mask: np.ndarray, connectivity: int = 8) -> Any:
        return imaging.connected_components_with_stats(mask, connectivity)  # type: ignore[arg-type]

    def dilate(self, src: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        if kernel.shape != (3, 3) or not kernel.all():
            raise NotImplementedError("only a full 3x3 kernel")
        return imaging.dilate3x3(src)

    def imencode(self, ext: str, image_bgr: np.ndarray) -> tuple[bool, np.ndarray]:
        if ext.lower() != ".png":
            raise NotImplementedError(ext)
        return True, np.frombuffer(imaging.encode_png(imaging.bgr_to_rgb(image_bgr)), dtype=np.uint8)


class _Dnn:
    def NMSBoxesBatched(
        self, boxes: list, scores: list, classes: list, score_threshold: float, nms_threshold: float
    ) -> np.ndarray:
        xywh = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        return imaging.nms_per_class(xyxy, scores, classes, score_threshold, nms_threshold)


class StageTimer:
    """Wraps an engine part (detector, recogniser): its calls add to ``clock[name]``; attributes
    pass through (``prepare``, ``config``, ...)."""

    def __init__(self, target: Any, clock: dict[str, float], name: str) -> None:
        self._target, self._clock, self._name = target, clock, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._target(*args, **kwargs)
        finally:
            self._clock[self._name] += time.perf_counter() - start

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class Timed:
    """Proxy that adds the wall time of every call to ``clock[name]`` (also inside ``.dnn``)."""

    def __init__(self, target: Any, clock: dict[str, float], prefix: str = "") -> None:
        self._target, self._clock, self._prefix = target, clock, prefix

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name == "dnn":
            return Timed(value, self._clock, "dnn.")
        if not callable(value):
            return value
        key = self._prefix + name

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                self._clock[key] += time.perf_counter() - start

        return timed


def docfn_modules_using_cv2() -> list[Any]:
    return [
        module
        for name, module in sorted(sys.modules.items())
        if name.startswith("docfn.") and module is not None and hasattr(module, "cv2")
    ]


@contextlib.contextmanager
def backend(target: Any, clock: dict[str, float]) -> Iterator[None]:
    """Point ``cv2`` in every loaded docfn module at ``target`` (timed) for the block."""
    modules = docfn_modules_using_cv2()
    saved = [module.cv2 for module in modules]
    proxy = Timed(target, clock)
    for module in modules:
        module.cv2 = proxy
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            module.cv2 = original


# --------------------------------------------------------------------------------------------------
# Comparisons


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(
    reference: list[tuple[float, ...]], candidate: list[tuple[float, ...]], same: Callable[[int, int], bool]
) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching by IoU (best pairs first), pairs allowed by ``same``."""
    pairs = sorted(
        (
            (iou(r, c), i, j)
            for i, r in enumerate(reference)
            for j, c in enumerate(candidate)
            if same(i, j) and iou(r, c) > 0
        ),
        reverse=True,
    )
    used_r: set[int] = set()
    used_c: set[int] = set()
    out = []
    for value, i, j in pairs:
        if i not in used_r and j not in used_c:
            used_r.add(i)
            used_c.add(j)
            out.append((i, j, value))
    return out


def quad_agreement(reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    ref = [tuple(q.min(axis=0)) + tuple(q.max(axis=0)) for q in reference]
    cand = [tuple(q.min(axis=0)) + tuple(q.max(axis=0)) for q in candidate]
    matches = match_boxes(ref, cand, lambda i, j: True)
    corner = [float(np.abs(reference[i] - candidate[j]).max()) for i, j, _ in matches]
    return {
        "reference": len(ref),
        "candidate": len(cand),
        "matched_iou_0.5": sum(1 for *_, v in matches if v >= 0.5),
        "identical": sum(1 for c in corner if c == 0),
        "max_corner_px": max(corner, default=0.0),
        "mean_iou": round(float(statistics.mean([float(v) for *_, v in matches])), 4) if matches else None,
    }


def region_agreement(reference: list[Region], candidate: list[Region]) -> dict[str, Any]:
    matches = match_boxes(
        [r.bbox for r in reference],
        [c.bbox for c in candidate],
        lambda i, j: reference[i].type == candidate[j].type,
    )
    good = [(i, j, v) for i, j, v in matches if v >= 0.5]
    return {
        "reference": len(reference),
        "candidate": len(candidate),
        "matched_same_type_iou_0.5": len(good),
        "mean_iou": round(statistics.mean([v for *_, v in good]), 4) if good else None,
        "min_iou": round(min(v for *_, v in good), 4) if good else None,
        "max_score_diff": round(
            max((abs(reference[i].score - candidate[j].score) for i, j, _ in good), default=0), 4
        ),
    }


def mask_agreement(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    fa, fb = a > 0, b > 0
    union = int((fa | fb).sum())
    return {
        "pixels_differ": int((fa != fb).sum()),
        "foreground": int(fa.sum()),
        "iou": round(float((fa & fb).sum()) / union, 5) if union else 1.0,
    }


# --------------------------------------------------------------------------------------------------
# The benchmark


# The page the single operations are timed on (beside the table page).
OPERATIONS_PAGE = "003"


def load_pages(devset: Path, ids: list[str]) -> tuple[list[tuple[str, np.ndarray]], dict[str, str]]:
    manifest = [e for e in json.loads((devset / "manifest.json").read_text()) if e["id"] in ids]
    pages = [(e["id"], np.asarray(Image.open(devset / f"{e['id']}.png").convert("RGB"))) for e in manifest]
    truths = {e["id"]: (devset / f"{e['id']}.txt").read_text() for e in manifest}
    return pages, truths


def installed_mb(distribution: str) -> float | None:
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    total = 0
    for file in files:
        path = Path(str(file.locate()))
        if path.is_file():
            total += path.stat().st_size
    return round(total / 1e6, 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_devset_arguments(parser)
    harness.add_store_argument(parser)
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed passes; per-page medians are reported (--quick: 1)"
    )
    parser.add_argument("--table-page", default="007")


def run(args: argparse.Namespace) -> int:
    store = harness.model_store(args)
    rounds = 1 if args.quick else args.rounds
    needed = {OPERATIONS_PAGE, args.table_page}
    chosen = set() if args.quick and args.pages is None else set(harness.devset_ids(args))
    ocr_dir, layout_dir = build_packs([OCR_PACK, LAYOUT_PACK], store)
    engine = OcrEngine(ocr_dir, verify_pack(ocr_dir))
    layout = LayoutAnalyzer(layout_dir, verify_pack(layout_dir)).detector
    table = table_recognizer("classic", ocr=engine)
    # Import every module that uses cv2, so the swap reaches them all.
    import docfn.tasks.parse.page
    import docfn.tasks.table.words  # noqa: F401

    variants: dict[str, Any] = {
        "opencv": cv2,
        "imaging": Cv2OnImaging(),
        "imaging/antialias-resize": Cv2OnImaging(antialias=True),
        "imaging/bicubic-warp": Cv2OnImaging(warp="bicubic"),
    }
    pages, truths = load_pages(args.devset, sorted(chosen | needed))
    # Stage clocks: the engine's detector and recogniser, wrapped; cropping is the rest of the page.
    stage_clock: dict[str, float] = defaultdict(float)
    engine.detector = StageTimer(engine.detector, stage_clock, "det")  # type: ignore[assignment]
    engine.recognizer = StageTimer(engine.recognizer, stage_clock, "rec")  # type: ignore[assignment]
    for target in variants.values():  # warm-up
        with backend(target, defaultdict(float)):
            engine.recognize_lines(pages[0][1])
            layout(pages[0][1])

    samples: dict[str, dict[str, list[dict[str, float]]]] = {k: defaultdict(list) for k in variants}
    texts: dict[str, dict[str, str]] = {k: {} for k in variants}
    quads: dict[str, dict[str, np.ndarray]] = {k: {} for k in variants}
    regions: dict[str, dict[str, list[Region]]] = {k: {} for k in variants}
    names = list(variants)
    for round_index in range(rounds):
        for page_number, (page_id, rgb) in enumerate(pages):
            shift = (page_number + round_index) % len(names)  # rotate who goes first
            for key in names[shift:] + names[:shift]:
                clock: dict[str, float] = defaultdict(float)
                stage_clock.clear()
                with backend(variants[key], clock):
                    start = time.perf_counter()
                    lines = engine.recognize_lines(rgb)
                    sample = {"ocr": time.perf_counter() - start, **stage_clock}
                    sample["crop"] = sample["ocr"] - sample.get("det", 0.0) - sample.get("rec", 0.0)
                    sample.update({f"op:{name}": value for name, value in clock.items()})
                    start = time.perf_counter()
                    found = layout(rgb)
                    sample["layout"] = time.perf_counter() - start
                samples[key][page_id].append(sample)
                if round_index == 0:
                    texts[key][page_id] = page_text(lines)
                    regions[key][page_id] = found
                    with backend(variants[key], defaultdict(float)):
                        quads[key][page_id] = engine.detector(imaging.rgb_to_bgr(rgb))

    def per_page(key: str, name: str) -> float:
        """Mean over pages of the per-page median over rounds."""
        by_page = samples[key].values()
        return statistics.mean(statistics.median(s.get(name, 0.0) for s in runs) for runs in by_page)

    total_chars = sum(len(normalise(t)) for t in truths.values())
    rows = []
    for key in names:
        edits = sum(edit_distance(normalise(texts[key][p]), normalise(truths[p])) for p, _ in pages)
        per_page_cer = {p: round(cer(texts[key][p], truths[p]), 4) for p, _ in pages}
        op_names = sorted(
            {n for runs in samples[key].values() for s in runs for n in s if n.startswith("op:")}
        )
        ops = {name[3:]: 1000 * per_page(key, name) for name in op_names}
        rows.append(
            {
                "variant": key,
                "ocr_cer": round(edits / total_chars, 4),
                "ocr_mean_page_cer": round(statistics.mean(per_page_cer.values()), 4),
                "ocr_s_per_page": round(per_page(key, "ocr"), 3),
                "stage_s_per_page": {
                    stage: round(per_page(key, stage), 4) for stage in ("det", "crop", "rec")
                },
                "ocr_image_ops_ms_per_page": round(sum(ops.values()), 1),
                "ocr_image_ops_ms_per_page_by_op": {
                    op: round(v, 2) for op, v in sorted(ops.items(), key=lambda kv: -kv[1])
                },
                "layout_s_per_page": round(per_page(key, "layout"), 4),
                "texts_identical_to_opencv": sum(texts[key][p] == texts["opencv"][p] for p, _ in pages),
                "per_page_cer": per_page_cer,
            }
        )
    agreement = {
        key: {
            "db_boxes": _sum_quads([quad_agreement(quads["opencv"][p], quads[key][p]) for p, _ in pages]),
            "layout": _sum_regions(
                [region_agreement(regions["opencv"][p], regions[key][p]) for p, _ in pages]
            ),
        }
        for key in names
        if key != "opencv"
    }
    report = {
        "machine": harness.machine(),
        "versions": {
            "opencv-python-headless": _version("opencv-python-headless"),
            "numpy": np.__version__,
            "pillow": Image.__version__,
        },
        "installed_mb": {
            name: installed_mb(name) for name in ("opencv-python-headless", "numpy", "pillow", "pyclipper")
        },
        "devset_pages": len(pages),
        "rounds": rounds,
        "ocr_pack": OCR_PACK,
        "layout_pack": LAYOUT_PACK,
        "rows": rows,
        "agreement_with_opencv": agreement,
        "table": table_report(pages, args.table_page, layout, table, variants, rounds),
        "png": png_report(pages),
        "operations": operations_report(dict(pages), engine, args.table_page),
    }
    print(harness.write_report(args.out, "imaging", report, markdown(report)))
    return 0


def _sum_quads(items: list[dict[str, Any]]) -> dict[str, Any]:
    ious = [i["mean_iou"] for i in items if i["mean_iou"] is not None]
    return {
        "opencv_boxes": sum(i["reference"] for i in items),
        "boxes": sum(i["candidate"] for i in items),
        "matched_iou_0.5": sum(i["matched_iou_0.5"] for i in items),
        "identical": sum(i["identical"] for i in items),
        "max_corner_px": max(i["max_corner_px"] for i in items),
        "mean_iou": round(statistics.mean(ious), 4) if ious else None,
    }


def _sum_regions(items: list[dict[str, Any]]) -> dict[str, Any]:
    ious = [i["mean_iou"] for i in items if i["mean_iou"] is not None]
    mins = [i["min_iou"] for i in items if i["min_iou"] is not None]
    return {
        "opencv_regions": sum(i["reference"] for i in items),
        "regions": sum(i["candidate"] for i in items),
        "matched_same_type_iou_0.5": sum(i["matched_same_type_iou_0.5"] for i in items),
        "mean_iou": round(statistics.mean(ious), 4) if ious else None,
        "min_iou": min(mins) if mins else None,
        "max_score_diff": max(i["max_score_diff"] for i in items),
    }


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def table_report(
    pages: list[tuple[str, np.ndarray]],
    table_page: str,
    layout: Any,
    table: Any,
    variants: dict[str, Any],
    rounds: int,
) -> dict[str, Any]:
    """Rulings and the classic table recogniser: the table page whole (the table task's input) and
    every region the layout model calls a table on the devset (found once, with OpenCV, so both
    backends see the same crops; cropped with parse's 6-px margin)."""
    images = {f"{table_page} page": dict(pages)[table_page]}
    for page_id, rgb in pages:
        with backend(cv2, defaultdict(float)):
            boxes = [r.bbox for r in layout(rgb) if r.type == "table"]
        for n, (x0, y0, x1, y1) in enumerate(boxes):
            images[f"{page_id} table {n}"] = np.ascontiguousarray(
                rgb[max(0, int(y0) - 6) : int(y1) + 7, max(0, int(x0) - 6) : int(x1) + 7]
            )
    out: dict[str, Any] = {"images": {name: list(image.shape[:2]) for name, image in images.items()}}
    for name, image in images.items():
        results: dict[str, Any] = {}
        times: dict[str, list[float]] = defaultdict(list)
        for _ in range(rounds):
            for key in ("opencv", "imaging"):
                with backend(variants[key], defaultdict(float)):
                    start = time.perf_counter()
                    found = rulings_module.find_rulings(image)
                    times[key].append(time.perf_counter() - start)
                    if key not in results:
                        results[key] = (
                            found,
                            rulings_module.grid_spans(found) if found.is_grid else [],
                            table(image),
                        )
        (ref, ref_spans, ref_table), (new, new_spans, new_table) = results["opencv"], results["imaging"]
        out[name] = {
            "horizontal_mask": mask_agreement(ref.horizontal, new.horizontal),
            "vertical_mask": mask_agreement(ref.vertical, new.vertical),
            "row_separators": [len(ref.ys), len(new.ys)],
            "column_separators": [len(ref.xs), len(new.xs)],
            "separator_max_shift_px": round(
                max(
                    [abs(a - b) for a, b in zip(ref.ys, new.ys, strict=False)]
                    + [abs(a - b) for a, b in zip(ref.xs, new.xs, strict=False)],
                    default=0.0,
                ),
                2,
            ),
            "grid_spans_identical": ref_spans == new_spans,
            "table_html_identical": ref_table.to_html() == new_table.to_html(),
            "table_html_cer": round(cer(new_table.to_html(), ref_table.to_html()), 4),
            "table_shape": [[ref_table.rows, ref_table.cols], [new_table.rows, new_table.cols]],
            "find_rulings_ms": {k: round(1000 * statistics.median(v), 1) for k, v in times.items()},
        }
    return out


def best_ms(call: Callable[[], Any], repeats: int = 15, inner: int = 5) -> float:
    """The fastest of ``repeats`` means of ``inner`` calls, in ms (the least disturbed estimate)."""
    call()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            call()
        best = min(best, (time.perf_counter() - start) / inner)
    return round(1000 * best, 4)


def operations_report(
    pages: dict[str, np.ndarray], engine: OcrEngine, table_page_id: str
) -> dict[str, dict[str, float | None]]:
    """Each operation alone on typical inputs from the devset, OpenCV vs imaging (best-of timings)."""
    page, table_page = pages[OPERATIONS_PAGE], pages[table_page_id]
    bgr = cv2.cvtColor(page, cv2.COLOR_RGB2BGR)
    detector = engine.detector
    probability = detector.session.run(None, {detector.input_name: detector.prepare(bgr)})[0][0, 0]
    bitmap = (probability > detector.config.thresh).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    contour = max(contours, key=len)
    box = cv2.boxPoints(cv2.minAreaRect(contour))
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(box.astype(np.int64).tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    unclipped = np.array(offset.Execute(6.0)[0], dtype=np.float32).reshape(-1, 1, 2)
    line = np.ascontiguousarray(bgr[300:320, 100:600])  # a 20-px text line, as the recogniser gets it
    upright = np.array([[100, 300], [600, 300], [600, 320], [100, 320]], dtype=np.float32)
    tilted = np.array([[100, 300], [600, 306], [600, 326], [100, 320]], dtype=np.float32)
    target = np.array([[0, 0], [500, 0], [500, 20], [0, 20]], dtype=np.float32)

    def cv2_crop(quad: np.ndarray) -> np.ndarray:
        """The crop as the OpenCV pipeline made it: cubic, edge pixels replicated."""
        matrix = cv2.getPerspectiveTransform(quad, target)
        return cv2.warpPerspective(
            bgr, matrix, (500, 20), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
        )

    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 500, (300, 2))
    boxes = np.c_[corners, corners + rng.uniform(10, 200, (300, 2))]
    scores, classes = rng.uniform(0.5, 1, 300), rng.integers(0, 10, 300)
    gray = cv2.cvtColor(table_page, cv2.COLOR_RGB2GRAY)
    binary = cv2.adaptiveThreshold(~gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 15, -2)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (41, 1))
    opened = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
    pairs: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "rgb_to_bgr (page)": (
            lambda: cv2.cvtColor(page, cv2.COLOR_RGB2BGR),
            lambda: imaging.rgb_to_bgr(page),
        ),
        "rgb_to_gray (page)": (
            lambda: cv2.cvtColor(page, cv2.COLOR_RGB2GRAY),
            lambda: imaging.rgb_to_gray(page),
        ),
        "resize page to 1248x1760 (det)": (
            lambda: cv2.resize(bgr, (1248, 1760)),
            lambda: imaging.resize_bilinear(bgr, 1248, 1760),
        ),
        "resize page to 608x800 (layout)": (
            lambda: cv2.resize(page, (608, 800)),
            lambda: imaging.resize_bilinear(page, 608, 800),
        ),
        "resize 20x500 line to 48 high (rec)": (
            lambda: cv2.resize(line, (1200, 48)),
            lambda: imaging.resize_bilinear(line, 1200, 48),
        ),
        "perspective crop, upright box": (
            lambda: cv2_crop(upright),
            lambda: imaging.perspective_crop(bgr, upright, (500, 20)),
        ),
        "perspective crop, tilted box": (
            lambda: cv2_crop(tilted),
            lambda: imaging.perspective_crop(bgr, tilted, (500, 20)),
        ),
        "contours/hulls of the DB map": (
            lambda: cv2.findContours(bitmap * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE),
            lambda: imaging.find_region_hulls(bitmap),
        ),
        "min-area rect (unclipped box)": (
            lambda: cv2.boxPoints(cv2.minAreaRect(unclipped)),
            lambda: imaging.box_points(imaging.min_area_rect(unclipped)),
        ),
        "box score (fill + mean)": (
            lambda: _opencv_box_score(probability, box),
            lambda: imaging.polygon_mean(probability, box),
        ),
        "NMS, 300 boxes, 10 classes": (
            lambda: cv2.dnn.NMSBoxesBatched(
                np.c_[boxes[:, :2], boxes[:, 2:] - boxes[:, :2]].tolist(),
                scores.tolist(),
                classes.tolist(),
                0.5,
                0.5,
            ),
            lambda: imaging.nms_per_class(boxes, scores, classes, 0.5, 0.5),
        ),
        "adaptive threshold (table page)": (
            lambda: cv2.adaptiveThreshold(~gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 15, -2),
            lambda: imaging.adaptive_threshold_mean(~gray, 15, -2),
        ),
        "open with a 41x1 line (table page)": (
            lambda: cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel),
            lambda: imaging.open_lines(binary, 41, horizontal=True),
        ),
        "components with stats (rules)": (
            lambda: cv2.connectedComponentsWithStats(opened, connectivity=8),
            lambda: imaging.connected_components_with_stats(opened, connectivity=8),
        ),
        "dilate 3x3 (table page)": (
            lambda: cv2.dilate(binary, np.ones((3, 3), np.uint8)),
            lambda: imaging.dilate3x3(binary),
        ),
    }
    out = {}
    for name, (theirs, ours) in pairs.items():
        ref, new = best_ms(theirs), best_ms(ours)
        out[name] = {"opencv_ms": ref, "imaging_ms": new, "ratio": round(new / ref, 1) if ref else None}
    return out


def _opencv_box_score(probability: np.ndarray, box: np.ndarray) -> float:
    """DB's box score as the OpenCV pipeline computes it (fillPoly + mean over the box's bounds)."""
    height, width = probability.shape
    x0 = int(np.clip(np.floor(box[:, 0].min()), 0, width - 1))
    x1 = int(np.clip(np.ceil(box[:, 0].max()), 0, width - 1))
    y0 = int(np.clip(np.floor(box[:, 1].min()), 0, height - 1))
    y1 = int(np.clip(np.ceil(box[:, 1].max()), 0, height - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    cv2.fillPoly(mask, (box - [x0, y0]).reshape(1, -1, 2).astype(np.int32), 1)
    return float(cv2.mean(probability[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def png_report(pages: list[tuple[str, np.ndarray]]) -> dict[str, Any]:
    """Encoding every devset page: OpenCV's default vs Pillow at level 1, lossless both."""
    times: dict[str, list[float]] = defaultdict(list)
    sizes: dict[str, int] = defaultdict(int)
    for _, rgb in pages:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        start = time.perf_counter()
        _, encoded = cv2.imencode(".png", bgr)
        times["opencv"].append(time.perf_counter() - start)
        sizes["opencv"] += len(encoded)
        start = time.perf_counter()
        data = imaging.encode_png(rgb)
        times["imaging"].append(time.perf_counter() - start)
        sizes["imaging"] += len(data)
        decoded = np.asarray(Image.open(__import__("io").BytesIO(data)).convert("RGB"))
        if not np.array_equal(decoded, rgb):
            raise AssertionError("PNG round trip changed the page")
    return {
        key: {
            "ms_per_page": round(1000 * statistics.mean(times[key]), 1),
            "mb_total": round(sizes[key] / 1e6, 2),
        }
        for key in times
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Image operations: OpenCV vs docfn.core.imaging (numpy + Pillow)",
        "",
        "The pipeline code is unchanged: each variant answers its"
        " `cv2` calls with OpenCV or with docfn.core.imaging; variants run interleaved page by page in one"
        " process. `imaging` uses the module's defaults (OpenCV-like sampling resize, bilinear crop warp);"
        " `antialias-resize`: Pillow's area-weighted BILINEAR wherever an image shrinks; `bicubic-warp`:"
        " text-line crops warped with Pillow's bicubic (OpenCV's pipeline asks INTER_CUBIC).",
        "",
        f"Devset: {report['devset_pages']} pages, {report['rounds']} rounds, per-page medians;"
        f" OCR pack {report['ocr_pack']}, layout pack {report['layout_pack']}.",
        "",
        "| variant | OCR CER | mean page CER | texts = OpenCV's | OCR s/page | det / crop / rec s/page"
        " | image ops ms/page (OCR) | layout s/page |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        stages = " / ".join(f"{row['stage_s_per_page'][k]:.3f}" for k in ("det", "crop", "rec"))
        lines.append(
            f"| {row['variant']} | {row['ocr_cer']:.2%} | {row['ocr_mean_page_cer']:.2%} |"
            f" {row['texts_identical_to_opencv']}/{report['devset_pages']} | {row['ocr_s_per_page']:.3f} |"
            f" {stages} | {row['ocr_image_ops_ms_per_page']:.1f} | {row['layout_s_per_page']:.3f} |"
        )
    lines += ["", "Image operations inside OCR, ms per page:", "", "| variant | by operation |", "|---|---|"]
    for row in report["rows"]:
        detail = ", ".join(f"{op} {ms}" for op, ms in row["ocr_image_ops_ms_per_page_by_op"].items())
        lines.append(f"| {row['variant']} | {detail} |")
    lines += [
        "",
        "Agreement with OpenCV. DB boxes: OpenCV's / ours / matched at IoU ≥ 0.5 / identical / largest corner"
        " shift (px). Layout regions: OpenCV's / ours / matched with the same type at IoU ≥ 0.5 / mean IoU /"
        " min IoU / largest score difference.",
        "",
        "| variant | DB boxes | layout regions |",
        "|---|---|---|",
    ]
    for key, a in report["agreement_with_opencv"].items():
        d, r = a["db_boxes"], a["layout"]
        lines.append(
            f"| {key} | {d['opencv_boxes']} / {d['boxes']} / {d['matched_iou_0.5']} / {d['identical']} /"
            f" {d['max_corner_px']} | {r['opencv_regions']} / {r['regions']} /"
            f" {r['matched_same_type_iou_0.5']} / {r['mean_iou']} / {r['min_iou']} / {r['max_score_diff']} |"
        )
    lines += [
        "",
        "Tables: rulings (find_rulings) and the classic table recogniser, OpenCV vs imaging, on the table"
        " page and on every devset region the layout model calls a table:",
        "",
        "| image | h-mask px differ | v-mask px differ | row, col separators | grid spans same |"
        " table shape | HTML same (CER vs OpenCV's) | find_rulings ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, t in report["table"].items():
        if name == "images":
            continue
        ms = t["find_rulings_ms"]
        lines.append(
            f"| {name} {report['table']['images'][name]} | {t['horizontal_mask']['pixels_differ']} |"
            f" {t['vertical_mask']['pixels_differ']} | {t['row_separators']}, {t['column_separators']} |"
            f" {t['grid_spans_identical']} | {t['table_shape']} | {t['table_html_identical']}"
            f" ({t['table_html_cer']:.2%}) | {ms['opencv']} → {ms['imaging']} |"
        )
    lines += [
        "",
        "Each operation alone on typical devset inputs (best of 15 x 5 calls, ms; ratio = imaging / OpenCV):",
        "",
        "| operation | OpenCV ms | imaging ms | ratio |",
        "|---|---|---|---|",
    ]
    for name, t in report["operations"].items():
        lines.append(f"| {name} | {t['opencv_ms']} | {t['imaging_ms']} | {t['ratio']} |")
    ref, new = report["png"]["opencv"], report["png"]["imaging"]
    lines += [
        "",
        "Notes: end-to-end s/page moves by 10-20 % between runs on a shared 2-core machine, more than"
        " the image operations cost; the image-ops columns (wall time inside the image calls, per page)"
        " are the stable comparison. OpenCV's `findContours(RETR_LIST)` also lists hole borders; none"
        " of them passed DB's score filter on the devset (482 boxes with or without them), so"
        " `find_region_hulls` leaves them out. DB boxes that differ move by a pixel or so (largest shift"
        " above): the resize rounds twice with 8-bit weights where OpenCV rounds once with 11-bit ones,"
        " which nudges the probability map.",
        "",
        f"PNG, whole devset pages: OpenCV {ref['ms_per_page']} ms/page, {ref['mb_total']} MB;"
        f" Pillow (level 1) {new['ms_per_page']} ms/page, {new['mb_total']} MB; both lossless.",
        "",
        "Installed size (MB): "
        + ", ".join(f"{k} {v}" for k, v in report["installed_mb"].items() if v is not None)
        + ".",
    ]
    return "\n".join(lines)
