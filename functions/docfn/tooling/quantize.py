"""``docfn models quantize``: int8 OCR packs, chosen per model by measurement, with the accuracy recorded.

Candidates per model (ONNX Runtime's own tooling, no extra dependency):

- ``static-qdq``: static QDQ quantisation, uint8 activations calibrated (MinMax) on real inputs,
  int8 per-channel weights. Convolutions need calibration and per-channel scales to keep
  accuracy (FIELD-NOTES: dynamic int8 of every op including Conv more than doubled CER).
- ``dynamic-matmul``: dynamic int8 of MatMul/Gemm only (recogniser's sequence head), no calibration.

Each candidate is measured end to end through our OcrEngine (CER on held-out pages with known
text, warm seconds per page, interleaved, the median of ``repeats`` rounds) with the other model
left at fp32. Per model the fastest candidate within the CER margin wins only if it is at least
``MIN_SPEEDUP`` faster than fp32 (timing noise alone never picks int8); the chosen combination is then
re-measured from the final, graph-optimised files, and the manifest records the fp32 and packed CER,
what was chosen per model and why. A model whose int8 candidates all lose stays fp32 (``reason``).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ConfigurationError
from ..packs.manifest import Manifest, describe_file, verify_pack
from ..packs.store import promote, scratch_dir
from . import optimize
from .evaluate import EvalPage, Measurement, engine_for, load_pages, measure, page_ids, spread

log = logging.getLogger("docfn.packs")

DEFAULT_MARGIN_PP = 0.5
# An int8 model must beat fp32 by this much (median speed) to be worth its accuracy risk: a tie
# within the noise of a shared CPU keeps fp32, so repeated runs choose the same models.
MIN_SPEEDUP = 0.03
DEFAULT_REPEATS = 3
MAX_REC_CROPS = 160  # calibration crops for the recogniser: enough for stable MinMax ranges


@dataclass(frozen=True)
class QuantizeOptions:
    calibration_dir: Path
    eval_dir: Path
    calibration_pages: int = 3
    eval_pages: int | None = None
    margin_pp: float = DEFAULT_MARGIN_PP
    version: str | None = None
    warmup: bool = True  # a warm-up page per candidate before timing (off only where speed is moot)
    repeats: int = DEFAULT_REPEATS  # timing rounds; the median round counts
    progress: Callable[[str], None] | None = None  # one line per step (the CLI prints them on stderr)

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)


def require_onnx() -> None:
    """Quantising needs ``onnx`` (build-time tooling a plain install does not have): say how to get it."""
    try:
        importlib.import_module("onnx")
    except ImportError as exc:
        raise ConfigurationError(
            f"docfn models quantize needs the onnx package ({exc}); install the build tools with"
            " `pip install -e .[export]`"
        ) from exc


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over a list of ready input tensors."""

    def __init__(self, input_name: str, tensors: list[np.ndarray]) -> None:
        self._items: Iterator[dict[str, np.ndarray]] = iter({input_name: t} for t in tensors)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def _input_name(model: Path) -> str:
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    initialisers = {i.name for i in graph.initializer}
    return next(i.name for i in graph.input if i.name not in initialisers)


def _preprocessed(source: Path, work: Path) -> Path:
    """Shape inference + ONNX-level cleanup the quantiser expects (ORT's quant_pre_process)."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(str(source))
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:
        # Per-channel QDQ needs DequantizeLinear's ``axis`` (opset 13); the rec model ships opset 11.
        upgraded = work / f"{source.stem}.opset13.onnx"
        onnx.save(version_converter.convert_version(model, 13), str(upgraded))
        source = upgraded
    target = work / f"{source.stem}.pre.onnx"
    # ONNX's own shape inference is enough for these conv nets; the symbolic pass (sympy) took
    # seconds on the detector's Resize nodes.
    with contextlib.chdir(work):  # its scratch files (uuid-named .data) must not land in the caller's cwd
        quant_pre_process(str(source), str(target), skip_symbolic_shape=True)
    return target


def static_qdq(source: Path, target: Path, tensors: list[np.ndarray], work: Path) -> None:

    # Absolute paths: the quantiser runs with ``work`` as its working directory.
    source, target, work = source.resolve(), target.resolve(), work.resolve()
    pre = _preprocessed(source, work)
    # ONNX's external-data helpers write uuid-named scratch files into the working directory.
    with contextlib.chdir(work):
        _quantize_static(pre, target, tensors)


def _quantize_static(pre: Path, target: Path, tensors: list[np.ndarray]) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(
        str(pre),
        str(target),
        _Reader(_input_name(pre), tensors),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
    )


def dynamic_matmul(source: Path, target: Path, work: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, target, work = source.resolve(), target.resolve(), work.resolve()
    pre = _preprocessed(source, work)
    with contextlib.chdir(work):
        quantize_dynamic(
            str(pre),
            str(target),
            op_types_to_quantize=["MatMul", "Gemm"],
            weight_type=QuantType.QInt8,
        )


def _calibration_tensors(
    source: Manifest, source_dir: Path, pages: list[EvalPage]
) -> dict[str, list[np.ndarray]]:
    """Detector inputs (whole pages) and recogniser inputs (line crops found by the fp32 detector)."""
    from ..core.imaging import rgb_to_bgr
    from ..tasks.ocr.engine import OcrEngine, crop_quad

    engine = OcrEngine(source_dir, source)
    det, rec = [], []
    for page in pages:
        bgr = rgb_to_bgr(page.rgb)
        det.append(engine.detector.prepare(bgr))
        rec.extend(engine.recognizer.prepare(crop_quad(bgr, quad)) for quad in engine.detector(bgr))
    if len(rec) > MAX_REC_CROPS:
        rec = [rec[round(i * len(rec) / MAX_REC_CROPS)] for i in range(MAX_REC_CROPS)]
    return {"det": det, "rec": rec}


def choose_candidate(
    role: str, results: dict[str, Measurement], baseline: Measurement, margin_pp: float
) -> tuple[str, dict[str, Any]]:
    """The candidate for one model: fastest within the CER margin, and clearly faster than fp32."""
    report: dict[str, Any] = {
        "candidates": {
            name: {
                "cer": round(m.cer, 5),
                "s_per_page": round(m.s_per_page, 3),
                "time_vs_fp32": round(m.s_per_page / baseline.s_per_page, 3),
            }
            for name, m in results.items()
        }
    }
    within = {n: m for n, m in results.items() if 100 * (m.cer - baseline.cer) <= margin_pp}
    fast = {n: m for n, m in within.items() if m.s_per_page <= (1 - MIN_SPEEDUP) * baseline.s_per_page}
    if fast:
        chosen = min(fast, key=lambda n: fast[n].s_per_page)
        report.update(chosen=chosen, precision="int8")
        return chosen, report
    if not within:
        report["reason"] = f"every int8 candidate lost more than {margin_pp:g} pp CER against fp32"
    else:
        report["reason"] = (
            f"int8 was within the CER margin but not {MIN_SPEEDUP:.0%} faster than fp32 on this CPU"
            " (median of the timing rounds)"
        )
    report.update(chosen="fp32", precision="fp32")
    return "fp32", report


def quantize_pack(source_dir: Path, store: Path, options: QuantizeOptions) -> Path:
    """Quantize the OCR pack at ``source_dir`` into ``store/NAME/VERSION`` (atomically) and return it."""
    require_onnx()
    source = verify_pack(source_dir)
    roles = {f.role for f in source.files}
    if not {"det", "rec", "rec_dict"} <= roles:
        raise ConfigurationError(f"{source.pack_id}: quantize handles OCR packs (det + rec) for now")

    cal_ids = spread(page_ids(options.calibration_dir), options.calibration_pages)
    eval_ids = page_ids(options.eval_dir)
    if options.eval_dir.resolve() == options.calibration_dir.resolve():
        eval_ids = [i for i in eval_ids if i not in cal_ids]  # held out: never score what calibrated
    if options.eval_pages:
        eval_ids = spread(eval_ids, options.eval_pages)
    if not eval_ids or not cal_ids:
        raise ConfigurationError("quantize needs at least one calibration page and one held-out eval page")
    cal_pages = load_pages(options.calibration_dir, cal_ids)
    eval_pages = load_pages(options.eval_dir, eval_ids)

    with scratch_dir(store, prefix=f".{source.name}-quantize-") as work:
        return _quantize(source, source_dir, store, work, cal_ids, cal_pages, eval_ids, eval_pages, options)


def _quantize(
    source: Manifest,
    source_dir: Path,
    store: Path,
    work: Path,
    cal_ids: list[str],
    cal_pages: list[EvalPage],
    eval_ids: list[str],
    eval_pages: list[EvalPage],
    options: QuantizeOptions,
) -> Path:
    src = {f.role: source_dir / f.path for f in source.files}
    options.say(f"calibrating on {len(cal_pages)} page(s): {','.join(cal_ids)}")
    tensors = _calibration_tensors(source, source_dir, cal_pages)
    candidates: dict[str, dict[str, Path]] = {"det": {}, "rec": {}}
    for role in ("det", "rec"):
        options.say(f"quantizing {role}: static-qdq")
        candidates[role]["static-qdq"] = work / f"{role}.static-qdq.onnx"
        static_qdq(src[role], candidates[role]["static-qdq"], tensors[role], work)
    options.say("quantizing rec: dynamic-matmul")
    candidates["rec"]["dynamic-matmul"] = work / "rec.dynamic-matmul.onnx"
    dynamic_matmul(src["rec"], candidates["rec"]["dynamic-matmul"], work)

    config = source.config
    engines = {"fp32": engine_for(src, config)}
    for role, by_method in candidates.items():
        for method, path in by_method.items():
            engines[f"{role}:{method}"] = engine_for({**src, role: path}, config)
    options.say(
        f"measuring {len(engines)} variants on {len(eval_pages)} held-out page(s): {','.join(eval_ids)}"
    )
    results = measure(
        engines,
        eval_pages,
        warmup=options.warmup,
        repeats=options.repeats,
        on_round=lambda done, total: options.say(f"timing round {done}/{total} done"),
    )
    baseline = results["fp32"]
    chosen: dict[str, Path] = {}
    models: dict[str, Any] = {}
    for role, by_method in candidates.items():
        method, report = choose_candidate(
            role, {m: results[f"{role}:{m}"] for m in by_method}, baseline, options.margin_pp
        )
        chosen[role] = by_method.get(method, src[role])
        models[role] = report
        options.say(f"{role}: {method}" + (f" ({report['reason']})" if "reason" in report else ""))

    with scratch_dir(store, prefix=f".{source.name}-int8-", suffix=".part") as staging:
        final = _assemble(source, src, chosen, staging)
        options.say("re-measuring the pack from its final, graph-optimised files")
        packed = _measure_pack(staging, final, config, eval_pages, options)
        # The chosen models were within the margin one at a time; together they must be too.
        quantized = [r for r in chosen if chosen[r] != src[r]]
        if quantized and 100 * (packed.cer - baseline.cer) > options.margin_pp:
            worst = max(quantized, key=lambda r: results[f"{r}:{models[r]['chosen']}"].cer)
            models[worst].update(
                chosen="fp32",
                precision="fp32",
                reason=f"with the other int8 model the pack lost more than {options.margin_pp:g} pp CER",
            )
            chosen[worst] = src[worst]
            shutil.rmtree(staging)
            staging.mkdir()
            final = _assemble(source, src, chosen, staging)
            packed = _measure_pack(staging, final, config, eval_pages, options)
        int8_roles = [r for r in ("det", "rec") if models[r]["precision"] == "int8"]
        precision = "int8" if int8_roles else "fp32"
        accuracy: dict[str, Any] = {
            "metric": "cer",
            "fp32": round(baseline.cer, 5),
            "int8": round(packed.cer, 5),
            "eval_set": f"{options.eval_dir.name}: {','.join(eval_ids)}",
            "pages": len(eval_ids),
            "calibration": f"{options.calibration_dir.name}: {','.join(cal_ids)}",
            "s_per_page": {"fp32": round(baseline.s_per_page, 3), "packed": round(packed.s_per_page, 3)},
            "models": models,
        }
        if precision == "fp32":
            accuracy["reason"] = "; ".join(f"{r}: {models[r]['reason']}" for r in ("det", "rec"))
        timing = {
            role: {
                "fp32_source_ms": round(1000 * optimize.session_create_seconds(src[role]), 1),
                "packed_ms": round(1000 * optimize.session_create_seconds(staging / final[role]), 1),
            }
            for role in ("det", "rec")
        }
        version = options.version or f"{source.version}-{'int8' if int8_roles else 'opt'}"
        manifest = Manifest(
            name=source.name,
            version=version,
            tasks=source.tasks,
            runtime=source.runtime,
            precision=precision,
            files=[describe_file(staging, path, role) for role, path in final.items()],
            source={
                "pack": source.pack_id,
                "files": {f.role: f.sha256 for f in source.files},
                "built_from": source.source,
            },
            config=source.config,
            accuracy=accuracy,
            extra={
                **source.extra,
                "int8_models": int8_roles,
                "graph_optimization": {
                    "level": optimize.LEVEL_NAME,
                    "onnxruntime": _ort_version(),
                    "session_create": timing,
                },
            },
        )
        manifest.write(staging)
        target = store / source.name / version
        promote(staging, target)
    log.info(
        "quantized %s -> %s@%s (%s): CER fp32 %.4f, packed %.4f",
        source.pack_id,
        source.name,
        version,
        precision,
        baseline.cer,
        packed.cer,
    )
    return target


def _measure_pack(
    staging: Path,
    files: dict[str, str],
    config: dict[str, Any],
    pages: list[EvalPage],
    options: QuantizeOptions,
) -> Measurement:
    """CER and speed of the files as packed (optimised graphs), not of the candidates they came from."""
    engine = engine_for({role: staging / path for role, path in files.items()}, config)
    return measure({"pack": engine}, pages, warmup=options.warmup, repeats=options.repeats)["pack"]


def _assemble(
    source: Manifest, src: dict[str, Path], chosen: dict[str, Path], staging: Path
) -> dict[str, str]:
    """Write the pack's files: every ONNX model graph-optimised, other files copied. Role -> path."""
    files: dict[str, str] = {}
    for entry in source.files:
        model = chosen.get(entry.role, src[entry.role])
        if entry.path.endswith(".onnx"):
            optimize.save_optimised(model, staging / entry.path)
        else:
            shutil.copyfile(model, staging / entry.path)
        files[entry.role] = entry.path
    return files


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


__all__ = ["QuantizeOptions", "quantize_pack", "require_onnx"]
