"""ONNX Runtime intra-op spin-waiting on or off, for docfn's OCR engine on real pages.

docfn's sessions turn spinning off (``session.intra_op.allow_spinning=0``, docfn.core.onnx_sessions).
This measures why, in one process, variants interleaved page by page after one warm-up page each:

- one page at a time: wall seconds and process CPU seconds per page (median) and their ratios;
- two requests at once (what ``DOCFN_MAX_CONCURRENCY=2`` does): two threads sharing one engine,
  pages per second.

The machine's load average is recorded before and after: spinning costs most when other work
wants the cores, as it does on a busy node, under a CPU quota or beside another request. Writes
onnx_spinning.{json,md}; ``--quick``: one page, one round.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import onnxruntime as ort

import docfn.tasks.ocr.engine as ocr_engine
from benchmarks import harness
from docfn.core import onnx_sessions
from docfn.core.onnx_sessions import new_session, session_options
from docfn.packs.catalog import DEFAULT_PACKS
from docfn.packs.manifest import verify_pack
from docfn.tooling.build import build_packs
from docfn.tooling.evaluate import EvalPage, load_pages

VARIANTS = {"spinning (ONNX Runtime's default)": "1", "no spinning (docfn)": "0"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_devset_arguments(parser, pages=8)
    harness.add_store_argument(parser)
    parser.add_argument("--rounds", type=int, default=2, help="passes over the pages (--quick: 1)")


@contextmanager
def sessions_with_spinning(allow: str) -> Iterator[None]:
    """Build the engine's sessions with docfn's options except the spinning entry."""

    def get_session(
        model_path: Path, threads: int = 0, mem_pattern: bool = True, shared_arena: bool = False
    ) -> ort.InferenceSession:
        if shared_arena:  # as docfn.core.onnx_sessions.get_session does before the first such session
            onnx_sessions._register_shared_arena()
        options = session_options(threads, mem_pattern=mem_pattern, shared_arena=shared_arena)
        options.add_session_config_entry("session.intra_op.allow_spinning", allow)
        return new_session(model_path, options)

    original = ocr_engine.get_session
    ocr_engine.get_session = get_session
    try:
        yield
    finally:
        ocr_engine.get_session = original


def concurrent_throughput(engine: ocr_engine.OcrEngine, pages: list[EvalPage], clients: int) -> float:
    """Pages per second with ``clients`` threads each reading every page once."""

    def client() -> None:
        for page in pages:
            engine.recognize_lines(page.rgb)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return clients * len(pages) / (time.perf_counter() - started)


def run(args: argparse.Namespace) -> int:
    (pack_dir,) = build_packs([DEFAULT_PACKS["ocr"]], harness.model_store(args))
    manifest = verify_pack(pack_dir)
    pages = load_pages(args.devset, harness.devset_ids(args))
    rounds = 1 if args.quick else args.rounds
    engines = {}
    for name, allow in VARIANTS.items():
        with sessions_with_spinning(allow):
            engines[name] = ocr_engine.OcrEngine(pack_dir, manifest)
        engines[name].recognize_lines(pages[0].rgb)  # warm-up

    load_before = harness.load_average()[0]
    runners = {name: engine.recognize_lines for name, engine in engines.items()}
    samples = harness.interleaved(runners, [page.rgb for page in pages], rounds, warm_up=False)
    walls = {name: [s.seconds for by_page in runs for s in by_page] for name, runs in samples.items()}
    cpus = {name: [s.cpu_seconds for by_page in runs for s in by_page] for name, runs in samples.items()}
    throughput = {name: concurrent_throughput(engine, pages, 2) for name, engine in engines.items()}
    load_after = harness.load_average()[0]

    spin, nospin = VARIANTS
    results: dict[str, Any] = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": {**harness.machine(), "onnxruntime": ort.__version__},
        "pages": [page.id for page in pages],
        "rounds": rounds,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "variants": {
            name: {
                "wall_s_per_page_median": round(statistics.median(walls[name]), 3),
                "cpu_s_per_page_median": round(statistics.median(cpus[name]), 3),
                "pages_per_s_two_concurrent": round(throughput[name], 3),
            }
            for name in engines
        },
    }
    v = results["variants"]
    results["ratios_spinning_over_none"] = {
        key: round(v[spin][key] / v[nospin][key], 2)
        for key in ("wall_s_per_page_median", "cpu_s_per_page_median", "pages_per_s_two_concurrent")
    }
    rows = "\n".join(
        f"| {name} | {r['wall_s_per_page_median']:.3f} | {r['cpu_s_per_page_median']:.3f} |"
        f" {r['pages_per_s_two_concurrent']:.2f} |"
        for name, r in v.items()
    )
    ratio = results["ratios_spinning_over_none"]
    markdown = (
        f"# ONNX Runtime spin-waiting\n\n"
        f"docfn's OCR engine (PP-OCRv6 tiny pack) on {len(pages)} devset pages x {rounds} rounds, "
        f"variants interleaved page by page in one process, {results['machine']['cpus']} CPUs; load "
        f"average {results['load_average_before']} before, {results['load_average_after']} after "
        f"(other work on the machine).\n\n"
        f"| variant | wall s/page (median) | CPU s/page (median) | pages/s, 2 requests at once |\n"
        f"|---|---|---|---|\n{rows}\n\n"
        f"Spinning over no spinning: wall x{ratio['wall_s_per_page_median']}, "
        f"CPU x{ratio['cpu_s_per_page_median']}, two-request throughput "
        f"x{ratio['pages_per_s_two_concurrent']}."
    )
    print(harness.write_report(args.out, "onnx_spinning", results, markdown))
    return 0
