"""Cold start by phase (pack fetched from a local S3 server) and int8 vs fp32 on the devset, in one run.

1. Builds the fp32 OCR pack, quantizes it (``docfn models quantize``, calibrated on 3 devset pages,
   scored on the 7 others), publishes both to a moto S3 server started on loopback.
2. Cold start: a fresh ``docfn serve`` process per run with an empty model store pointed at the
   pack on S3; spawn -> listening -> first OCR result (phases from the response: import, fetch,
   verify, session_create, first_inference), then one warm request. fp32 and int8 runs interleave.
3. Quantization: det and rec candidates (static QDQ per-channel; dynamic MatMul-only for rec) vs
   fp32 on every devset page, interleaved: per-stage latency and end-to-end CER (held-out pages
   and all pages), plus session-create time of the source vs the graph-optimised models.

Writes cold_start.{json,md} and quantization.{json,md}; with ``--no-int8`` (``--quick``: one run)
the fp32 cold start only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import harness
from docfn.core.imaging import rgb_to_bgr
from docfn.core.textmetrics import edit_distance, normalise
from docfn.packs.manifest import Manifest, verify_pack
from docfn.tasks.ocr.engine import crop_quad, page_text
from docfn.tooling import optimize
from docfn.tooling.build import build_packs
from docfn.tooling.evaluate import engine_for, load_pages, page_ids
from docfn.tooling.publish import publish_pack
from docfn.tooling.quantize import (
    QuantizeOptions,
    _calibration_tensors,
    dynamic_matmul,
    quantize_pack,
    static_qdq,
)
from docfn_testkit.paths import DEVSET, SAMPLE_PAGE
from docfn_testkit.servers import AWS_TEST_ENV, DocfnServer, S3Server

BUCKET = "docfn-bench"
PACK = "ocr-ppocrv6-tiny"


def cold_start_run(uri: str, endpoint: str) -> dict[str, float]:
    """One fresh process, empty store: spawn -> listening -> first OCR result -> one warm request."""
    store = Path(tempfile.mkdtemp(prefix="docfn-bench-store-"))
    server = DocfnServer(
        {
            "DOCFN_TASKS": "ocr",
            "DOCFN_MODEL_URI": uri,
            "DOCFN_MODEL_STORE": str(store),
            "DOCFN_S3_ENDPOINT_URL": endpoint,
            "DOCFN_LOG_LEVEL": "WARNING",
        }
    )
    data = SAMPLE_PAGE.read_bytes()
    spawned = time.perf_counter()
    try:
        server.start()  # returns once the port listens
        listening = time.perf_counter()
        with server.client(timeout=120) as client:
            first = client.post("/v1/ocr", content=data, headers={"content-type": "image/png"})
            answered = time.perf_counter()
            first.raise_for_status()
            warm_start = time.perf_counter()
            warm = client.post(
                "/v1/ocr?min_confidence=0.51", content=data, headers={"content-type": "image/png"}
            )
            warm_total = time.perf_counter() - warm_start
            warm.raise_for_status()
    finally:
        if server.process is not None:
            server.stop()
        shutil.rmtree(store, ignore_errors=True)
    phases = {k: v / 1000 for k, v in first.json()["timings_ms"].items()}
    assert first.json()["cold"] and not warm.json()["cold"]
    return {
        "spawn_to_listening": listening - spawned,
        "spawn_to_first_result": answered - spawned,
        "first_request": answered - listening,
        **{f"phase_{k}": v for k, v in phases.items()},
        "warm_request": warm_total,
        "warm_inference": warm.json()["timings_ms"]["inference"] / 1000,
    }


def pack_bytes(pack_dir: Path) -> dict[str, int]:
    manifest = Manifest.load(pack_dir)
    return {f.role: f.size for f in manifest.files} | {"total": sum(f.size for f in manifest.files)}


def bench_cold_start(packs: dict[str, Path], runs: int) -> dict[str, Any]:
    """Cold starts of each pack (label -> pack dir), runs interleaved across packs."""
    os.environ.update(AWS_TEST_ENV)
    s3 = S3Server().start()
    try:
        s3.client().create_bucket(Bucket=BUCKET)
        uris = {
            key: publish_pack(pack, BUCKET, endpoint_url=s3.endpoint_url).uri for key, pack in packs.items()
        }
        samples: dict[str, list[dict[str, float]]] = {k: [] for k in uris}
        for _ in range(runs):  # interleaved: fp32, int8, fp32, int8, …
            for key, uri in uris.items():
                samples[key].append(cold_start_run(uri, s3.endpoint_url))
    finally:
        s3.stop()
    summary = {
        key: {name: round(statistics.median(s[name] for s in runs_), 4) for name in runs_[0]}
        for key, runs_ in samples.items()
    }
    return {"uris": uris, "runs": runs, "median_seconds": summary, "samples": samples}


def bench_quantization(source_dir: Path, int8_dir: Path, devset: Path) -> dict[str, Any]:
    source = verify_pack(source_dir)
    packed = verify_pack(int8_dir)
    cal_ids = packed.accuracy["calibration"].split(": ", 1)[1].split(",")
    ids = page_ids(devset)
    pages = load_pages(devset, ids)
    src = {f.role: source_dir / f.path for f in source.files}
    work = Path(tempfile.mkdtemp(prefix="docfn-bench-quant-"))
    try:
        tensors = _calibration_tensors(source, source_dir, [p for p in pages if p.id in cal_ids])
        det_int8, rec_static, rec_dynamic = (
            work / "det.int8.onnx",
            work / "rec.int8.onnx",
            work / "rec.dyn.onnx",
        )
        static_qdq(src["det"], det_int8, tensors["det"], work)
        static_qdq(src["rec"], rec_static, tensors["rec"], work)
        dynamic_matmul(src["rec"], rec_dynamic, work)
        config = source.config
        engines = {
            "fp32": engine_for(src, config),
            "det:static-qdq": engine_for({**src, "det": det_int8}, config),
            "rec:static-qdq": engine_for({**src, "rec": rec_static}, config),
            "rec:dynamic-matmul": engine_for({**src, "rec": rec_dynamic}, config),
            "pack:" + packed.version: engine_for({f.role: int8_dir / f.path for f in packed.files}, config),
        }
        stage = {  # per-stage latency, same inputs: det on the page, rec on fp32-detected crops
            "det": {"fp32": engines["fp32"], "static-qdq": engines["det:static-qdq"]},
            "rec": {
                "fp32": engines["fp32"],
                "static-qdq": engines["rec:static-qdq"],
                "dynamic-matmul": engines["rec:dynamic-matmul"],
            },
        }
        for engine in engines.values():
            engine.recognize_lines(pages[0].rgb)
        stage_times: dict[str, dict[str, list[float]]] = {s: {k: [] for k in v} for s, v in stage.items()}
        e2e_times: dict[str, list[float]] = {k: [] for k in engines}
        edits: dict[str, dict[str, int]] = {k: {} for k in engines}
        for page in pages:
            bgr = rgb_to_bgr(page.rgb)
            crops = [crop_quad(bgr, q) for q in engines["fp32"].detector(bgr)]
            for key, engine in stage["det"].items():
                start = time.perf_counter()
                engine.detector(bgr)
                stage_times["det"][key].append(time.perf_counter() - start)
            for key, engine in stage["rec"].items():
                start = time.perf_counter()
                for crop in crops:
                    engine.recognizer(crop)
                stage_times["rec"][key].append(time.perf_counter() - start)
            truth = normalise(page.truth or "")
            for key, engine in engines.items():
                start = time.perf_counter()
                text = page_text(engine.recognize_lines(page.rgb))
                e2e_times[key].append(time.perf_counter() - start)
                edits[key][page.id] = edit_distance(normalise(text), truth)
        chars = {p.id: len(normalise(p.truth or "")) for p in pages}
        held_out = [i for i in ids if i not in cal_ids]

        def corpus_cer(key: str, subset: list[str]) -> float:
            return round(sum(edits[key][i] for i in subset) / sum(chars[i] for i in subset), 5)

        rows = []
        for key in engines:
            rows.append(
                {
                    "variant": key,
                    "cer_held_out": corpus_cer(key, held_out),
                    "cer_all": corpus_cer(key, ids),
                    "s_per_page": round(statistics.mean(e2e_times[key]), 3),
                    "time_vs_fp32": round(
                        statistics.mean(e2e_times[key]) / statistics.mean(e2e_times["fp32"]), 3
                    ),
                }
            )
        stages = {
            name: {
                key: {
                    "s_per_page": round(statistics.mean(t), 4),
                    "time_vs_fp32": round(statistics.mean(t) / statistics.mean(times["fp32"]), 3),
                }
                for key, t in times.items()
            }
            for name, times in stage_times.items()
        }
        sizes = {
            "det": {"fp32": src["det"].stat().st_size, "static-qdq": det_int8.stat().st_size},
            "rec": {
                "fp32": src["rec"].stat().st_size,
                "static-qdq": rec_static.stat().st_size,
                "dynamic-matmul": rec_dynamic.stat().st_size,
            },
        }
        session: dict[str, dict[str, list[float]]] = {}
        for role in ("det", "rec"):
            session[role] = {"fp32_source": [], "packed_optimised": []}
            for _ in range(7):  # interleaved medians
                session[role]["fp32_source"].append(optimize.session_create_seconds(src[role], repeats=1))
                session[role]["packed_optimised"].append(
                    optimize.session_create_seconds(int8_dir / packed.file(role).path, repeats=1)
                )
        # The same fp32 graph, optimised vs not: isolates the build-time optimisation from int8.
        for role in ("det", "rec"):
            optimised = work / f"{role}.fp32.opt.onnx"
            optimize.save_optimised(src[role], optimised)
            session[role]["fp32_optimised"] = [
                optimize.session_create_seconds(optimised, repeats=1) for _ in range(7)
            ]
        session_ms = {
            r: {k: round(1000 * statistics.median(v), 1) for k, v in d.items()} for r, d in session.items()
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "calibration_pages": cal_ids,
        "held_out_pages": held_out,
        "e2e": rows,
        "stages": stages,
        "model_bytes": sizes,
        "session_create_ms": session_ms,
        "pack_bytes": {"fp32": pack_bytes(source_dir), packed.version: pack_bytes(int8_dir)},
        "pack_choice": {r: m.get("chosen") for r, m in packed.accuracy["models"].items()},
        "manifest_accuracy": {k: packed.accuracy[k] for k in ("metric", "fp32", "int8", "eval_set", "pages")},
    }


def cold_start_markdown(machine: dict[str, Any], cold: dict[str, Any]) -> str:
    med = cold["median_seconds"]
    keys = [k for k in next(iter(med.values())) if k != "phase_import"]
    lines = [
        f"Cold start, fresh `docfn serve` process, empty store, pack fetched from a local moto S3 server;"
        f" median of {cold['runs']} interleaved runs ({machine['cpus']} CPUs). Seconds.",
        "",
        "| step | " + " | ".join(med) + " |",
        "|---|" + "---|" * len(med),
        "| phase_import | " + " | ".join(f"{m.get('phase_import', 0):.3f}" for m in med.values()) + " |",
    ]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(f"{m[key]:.3f}" for m in med.values()) + " |")
    return "\n".join(lines)


def quantization_markdown(quant: dict[str, Any]) -> str:
    q = [
        "End to end on the devset, interleaved page by page, warm. CER: NFKC, whitespace removed, corpus."
        f" Calibration pages {','.join(quant['calibration_pages'])}; held out"
        f" {','.join(quant['held_out_pages'])}.",
        "",
        "| variant | CER held-out | CER all pages | s/page | time vs fp32 |",
        "|---|---|---|---|---|",
    ]
    for row in quant["e2e"]:
        q.append(
            f"| {row['variant']} | {row['cer_held_out']:.2%} | {row['cer_all']:.2%}"
            f" | {row['s_per_page']:.3f} |"
            f" {row['time_vs_fp32']} |"
        )
    q += [
        "",
        "Per stage (same inputs; rec on the fp32 detector's crops):",
        "",
        "| stage | variant | s/page | time vs fp32 | model bytes |",
        "|---|---|---|---|---|",
    ]
    for stage, variants in quant["stages"].items():
        for key, row in variants.items():
            q.append(
                f"| {stage} | {key} | {row['s_per_page']:.4f} | {row['time_vs_fp32']} |"
                f" {quant['model_bytes'][stage][key]:,} |"
            )
    q += [
        "",
        "Session creation (ms, median, runtime options = level ALL):",
        "",
        "| model | fp32 source | fp32 optimised (EXTENDED, saved) | packed |",
        "|---|---|---|---|",
    ]
    for role, row in quant["session_create_ms"].items():
        q.append(f"| {role} | {row['fp32_source']} | {row['fp32_optimised']} | {row['packed_optimised']} |")
    q += ["", "| pack | bytes |", "|---|---|"]
    for name, sizes in quant["pack_bytes"].items():
        q.append(f"| {name} | {sizes['total']:,} |")
    q += ["", f"Pack choice per model: {quant['pack_choice']}"]
    return "\n".join(q)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devset", type=Path, default=DEVSET, help="calibration and evaluation pages")
    parser.add_argument("--runs", type=int, default=3, help="cold starts per pack (--quick: 1)")
    harness.add_store_argument(parser, "a temporary folder")
    parser.add_argument(
        "--no-int8", action="store_true", help="fp32 only: no quantizing (minutes), no quantization report"
    )


def run(args: argparse.Namespace) -> int:
    store = args.store or harness.temp_store("docfn-bench-packs-")
    fp32_dir = build_packs([PACK], store)[0]
    packs = {"fp32": fp32_dir}
    int8 = not (args.no_int8 or args.quick)
    quantize_seconds = 0.0
    if int8:
        started = time.perf_counter()
        packs["int8"] = quantize_pack(fp32_dir, store, QuantizeOptions(args.devset, args.devset))
        quantize_seconds = time.perf_counter() - started
        print(f"quantized in {quantize_seconds:.1f} s -> {packs['int8']}", file=sys.stderr)

    machine = harness.machine()  # its load_average: at the start
    cold = bench_cold_start(packs, 1 if args.quick else args.runs)
    quant = bench_quantization(fp32_dir, packs["int8"], args.devset) if int8 else None
    machine["load_average_at_end"] = harness.load_average()
    data = {"machine": machine, **cold}
    print(harness.write_report(args.out, "cold_start", data, cold_start_markdown(machine, cold)))
    if quant is not None:
        quant["quantize_seconds"] = round(quantize_seconds, 1)
        data = {"machine": machine, **quant}
        print(harness.write_report(args.out, "quantization", data, quantization_markdown(quant)))
    return 0
