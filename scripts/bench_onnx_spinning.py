#!/usr/bin/env python3
"""ONNX Runtime intra-op spin-waiting on or off, for docfn's OCR engine on real pages.

docfn's sessions turn spinning off (``session.intra_op.allow_spinning=0``, docfn.core.onnx_sessions).
This measures why, in one process, variants interleaved page by page after one warm-up page each:

- one page at a time: wall seconds and process CPU seconds per page (median) and their ratios;
- two requests at once (what ``DOCFN_MAX_CONCURRENCY=2`` does): two threads sharing one engine,
  pages per second.

The machine's load average is recorded before and after: spinning costs most when other work
wants the cores, as it does on a busy node, under a CPU quota or beside another request.

    .venv/bin/python scripts/bench_onnx_spinning.py [--pages 8] [--rounds 2] [--out docs/benchmarks]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import onnxruntime as ort

import docfn.tasks.ocr.engine as ocr_engine
from docfn.core.cpus import available_cpus
from docfn.core.onnx_sessions import new_session, session_options
from docfn.core.settings import Settings
from docfn.packs.catalog import DEFAULT_PACKS
from docfn.packs.manifest import verify_pack
from docfn.tooling.build import build_packs
from docfn.tooling.evaluate import EvalPage, load_pages, page_ids, spread

ROOT = Path(__file__).resolve().parents[1]
DEVSET = ROOT.parent / "shared" / "devset"
VARIANTS = {"spinning (ONNX Runtime's default)": "1", "no spinning (docfn)": "0"}


@contextmanager
def sessions_with_spinning(allow: str) -> Iterator[None]:
    """Build the engine's sessions with docfn's options except the spinning entry."""

    def get_session(model_path: Path, threads: int = 0) -> ort.InferenceSession:
        options = session_options(threads)
        options.add_session_config_entry("session.intra_op.allow_spinning", allow)
        return new_session(model_path, options)

    original = ocr_engine.get_session
    ocr_engine.get_session = get_session
    try:
        yield
    finally:
        ocr_engine.get_session = original


def timed(run: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args()

    (pack_dir,) = build_packs([DEFAULT_PACKS["ocr"]], Settings().model_store)
    manifest = verify_pack(pack_dir)
    pages = load_pages(DEVSET, spread(page_ids(DEVSET), args.pages))
    engines = {}
    for name, allow in VARIANTS.items():
        with sessions_with_spinning(allow):
            engines[name] = ocr_engine.OcrEngine(pack_dir, manifest)
        engines[name].recognize_lines(pages[0].rgb)  # warm-up

    load_before = os.getloadavg()[0]
    walls: dict[str, list[float]] = {name: [] for name in engines}
    cpus: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(args.rounds):
        for page in pages:
            for name, engine in engines.items():
                wall, cpu = timed(lambda engine=engine, page=page: engine.recognize_lines(page.rgb))
                walls[name].append(wall)
                cpus[name].append(cpu)
    throughput = {name: concurrent_throughput(engine, pages, 2) for name, engine in engines.items()}
    load_after = os.getloadavg()[0]

    spin, nospin = VARIANTS
    results: dict[str, Any] = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "cpus": available_cpus(),
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
        },
        "pages": [page.id for page in pages],
        "rounds": args.rounds,
        "load_average_before": round(load_before, 2),
        "load_average_after": round(load_after, 2),
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
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "onnx_spinning.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = "\n".join(
        f"| {name} | {r['wall_s_per_page_median']:.3f} | {r['cpu_s_per_page_median']:.3f} |"
        f" {r['pages_per_s_two_concurrent']:.2f} |"
        for name, r in v.items()
    )
    ratio = results["ratios_spinning_over_none"]
    (args.out / "onnx_spinning.md").write_text(
        f"# ONNX Runtime spin-waiting (scripts/bench_onnx_spinning.py)\n\n"
        f"docfn's OCR engine (PP-OCRv6 tiny pack) on {len(pages)} devset pages x {args.rounds} rounds, "
        f"variants interleaved page by page in one process, {results['machine']['cpus']} CPUs; load "
        f"average {results['load_average_before']} before, {results['load_average_after']} after "
        f"(other work on the machine).\n\n"
        f"| variant | wall s/page (median) | CPU s/page (median) | pages/s, 2 requests at once |\n"
        f"|---|---|---|---|\n{rows}\n\n"
        f"Spinning over no spinning: wall x{ratio['wall_s_per_page_median']}, "
        f"CPU x{ratio['cpu_s_per_page_median']}, two-request throughput "
        f"x{ratio['pages_per_s_two_concurrent']}.\n"
    )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
