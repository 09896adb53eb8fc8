"""Where an OCR function's memory goes (issue 18: peak RSS at most 400 MB under load).

For each variant (a name and environment variables over a deployment's defaults), in fresh
processes:

- ``stages`` (one of ``--parts``): in-process, the resident set after importing docfn's service,
  after the pack is loaded (sessions built), after the first page and after every devset page, with
  the high-water mark (VmHWM), the anonymous / file-backed split at the end
  (/proc/PID/smaps_rollup), the Python heap's own peak (tracemalloc, ``--tracemalloc``: slow) and
  the warm per-page latency (median). Variants run round-robin, ``--rounds`` times: latencies are
  compared as ratios to the first variant's in the same run.
- ``load`` (the other): ``docfn serve --tasks <task>`` as a Knative deployment runs it (eager load,
  one request inferring at a time), VmHWM when ready, after the first page and after 1, 2, 4, 8
  concurrent clients have posted every devset page between them (no result cache).

Writes <name>.{json,md} (``--name``, default memory); ``--quick``: one page, one round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks import harness
from benchmarks.harness import rollup_mb, status_mb
from docfn.core.malloc_policy import GLIBC_DEFAULT_TUNABLE

# What a deployment sets (knative/base/config.yaml) that changes memory: models loaded at start,
# one inference at a time; the benchmark's clients wait instead of getting 504.
DEPLOYMENT_ENV = {"DOCFN_EAGER_LOAD": "1", "DOCFN_MAX_CONCURRENCY": "1"}
CLIENTS = (1, 2, 4, 8)
# What each variant adds to the environment; the first is the reference of the latency ratios.
# "as_shipped" is docfn's own malloc settings (docfn.core.malloc_policy: two arenas, fixed mmap and
# trim thresholds). "glibc_default" is glibc's own arena cap on this machine (8 per core) in place
# of the two. "glibc_thresholds" leaves the thresholds to glibc's own adjustment, as before docfn
# fixed them.
VARIANTS: dict[str, dict[str, str]] = {
    "glibc_default": {"MALLOC_ARENA_MAX": str(8 * (os.cpu_count() or 1))},
    "glibc_thresholds": {"GLIBC_TUNABLES": GLIBC_DEFAULT_TUNABLE},
    "as_shipped": {},
}


def page_files(devset: Path, ids: list[str]) -> list[Path]:
    return [devset / f"{page_id}.png" for page_id in ids]


# --- in-process stages (run in a child process per variant) -----------------------------------


def child_stages(task: str, devset: Path, ids: list[str], trace: bool) -> dict[str, Any]:
    if trace:
        import tracemalloc

        tracemalloc.start()
    # glibc's malloc is already set as docfn's entry points set it (scripts/bench.py, first thing).
    stages: dict[str, Any] = {}
    from docfn.adapters.wiring import build_service
    from docfn.core.settings import Settings

    stages["import"] = status_mb()
    service = build_service(Settings(tasks=[task], memory_cache_entries=0))
    service.load_all(eager=True)
    stages["loaded"] = status_mb()
    documents = [path.read_bytes() for path in page_files(devset, ids)]
    service.run(task, documents[0], "image/png")
    stages["first_page"] = status_mb()
    seconds = []
    for data in documents:
        started = time.perf_counter()
        service.run(task, data, "image/png")
        seconds.append(time.perf_counter() - started)
    stages["all_pages"] = status_mb()
    result: dict[str, Any] = {"stages": stages, "rollup": rollup_mb(), "median_s": statistics.median(seconds)}
    if trace:
        result["tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    return result


def run_child(task: str, env: dict[str, str], devset: Path, ids: list[str], trace: bool) -> dict[str, Any]:
    command = harness.section_command(
        "memory", "--child", "--tasks", task, "--devset", str(devset), "--child-pages", ",".join(ids)
    )
    if trace:
        command.append("--tracemalloc")
    done = subprocess.run(
        command, env={**os.environ, **DEPLOYMENT_ENV, **env}, check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_stages(
    task: str, variants: dict[str, dict[str, str]], devset: Path, ids: list[str], rounds: int, trace: bool
) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for _ in range(rounds):  # round-robin: a variant's neighbours in time are the other variants
        for name, env in variants.items():
            runs[name].append(run_child(task, env, devset, ids, trace))
    first = next(iter(variants))
    base = statistics.median(r["median_s"] for r in runs[first])
    rows = {}
    for name, results in runs.items():
        median_s = statistics.median(r["median_s"] for r in results)
        last = results[-1]
        rows[name] = {
            **last,
            "median_s": round(median_s, 4),
            "latency_vs_first": round(median_s / base, 3),
            "hwm_mb": max(r["stages"]["all_pages"]["hwm"] for r in results),
        }
    return rows


# --- under load over HTTP ---------------------------------------------------------------------


def wait_ready(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/readyz", timeout=30).status_code == 200:
            return
        time.sleep(0.2)
    raise TimeoutError("docfn never became ready")


def bench_load(
    task: str, env: dict[str, str], devset: Path, ids: list[str], store: Path | None
) -> dict[str, Any]:
    documents = [path.read_bytes() for path in page_files(devset, ids)]
    # No result cache: every level posts the same pages again, and every post must infer.
    extra = {"DOCFN_TASKS": task, "DOCFN_MEMORY_CACHE_ENTRIES": "0", **DEPLOYMENT_ENV, **env}
    if store is not None:
        extra["DOCFN_MODEL_STORE"] = str(store)
    server = harness.docfn_server(extra)
    pid, url = harness.server_pid(server), server.url
    try:
        wait_ready(url)
        row: dict[str, Any] = {"ready": status_mb(pid)}
        harness.throughput(url, documents[:1], 1, 1, task)
        row["first_page"] = status_mb(pid)
        for clients in CLIENTS:
            harness.throughput(url, documents, clients, max(len(documents), clients), task)  # every page
            row[f"clients_{clients}"] = status_mb(pid)
        row["rollup"] = rollup_mb(pid)
        row["peak_mb"] = row[f"clients_{CLIENTS[-1]}"]["hwm"]
        return row
    finally:
        server.stop()


def markdown(report: dict[str, Any]) -> str:
    out = [
        f"On {report['machine']['cpus']} CPUs, {report['pages']} devset pages;"
        f" load average {report['machine']['load_average']} at start, {report['load_average_end']} at end.",
        "",
    ]
    for task, section in report["tasks"].items():
        if "stages" in section:
            out += [
                f"### {task}: in-process, RSS MB by stage (VmRSS; peak = VmHWM)",
                "",
                "| variant | import | loaded | first page | all pages | peak | anon | file | median s"
                " | vs first |",
                "|---|---|---|---|---|---|---|---|---|---|",
            ]
            for name, r in section["stages"].items():
                s = r["stages"]
                out.append(
                    f"| {name} | {s['import']['rss']} | {s['loaded']['rss']} | {s['first_page']['rss']}"
                    f" | {s['all_pages']['rss']} | {r['hwm_mb']} | {r['rollup']['anonymous']}"
                    f" | {r['rollup']['file']} | {r['median_s']} | {r['latency_vs_first']} |"
                )
            out.append("")
        if "load" in section:
            columns = ["ready", "first_page", *(f"clients_{c}" for c in CLIENTS)]
            out += [
                f"### {task}: `docfn serve` under load, VmHWM MB (peak so far) after each step",
                "",
                "| variant | " + " | ".join(columns) + " | RSS at end | anon | file |",
                "|---" * (len(columns) + 4) + "|",
            ]
            for name, r in section["load"].items():
                cells = " | ".join(str(r[c]["hwm"]) for c in columns)
                last = r[columns[-1]]["rss"]
                rollup = r["rollup"]
                out.append(f"| {name} | {cells} | {last} | {rollup['anonymous']} | {rollup['file']} |")
            out.append("")
    return "\n".join(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_devset_arguments(parser)
    harness.add_store_argument(parser)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"from {list(VARIANTS)}")
    parser.add_argument("--tasks", default="ocr", help="comma list: ocr, layout, parse")
    parser.add_argument("--parts", default="stages,load", help="comma list: stages, load")
    parser.add_argument("--rounds", type=int, default=2, help="in-process runs per variant (--quick: 1)")
    parser.add_argument("--tracemalloc", action="store_true", help="the Python heap's peak too (slow)")
    parser.add_argument("--name", default="memory", help="report file name, without .json / .md")
    # A variant's in-process run: a child process of this section, its result on stdout.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-pages", default="", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    if args.child:
        ids = args.child_pages.split(",")
        print(json.dumps(child_stages(args.tasks, args.devset, ids, args.tracemalloc)))
        return 0
    if args.store is not None:
        os.environ["DOCFN_MODEL_STORE"] = str(args.store)
    ids = harness.devset_ids(args)
    rounds = 1 if args.quick else args.rounds
    variants = {name: VARIANTS[name] for name in args.variants.split(",")}
    parts = args.parts.split(",")
    report: dict[str, Any] = {"machine": harness.machine(), "pages": len(ids), "tasks": {}}
    text = ""
    for task in args.tasks.split(","):
        section: dict[str, Any] = {}
        if "stages" in parts:
            section["stages"] = bench_stages(task, variants, args.devset, ids, rounds, args.tracemalloc)
        if "load" in parts:
            section["load"] = {
                name: bench_load(task, env, args.devset, ids, args.store) for name, env in variants.items()
            }
        report["tasks"][task] = section
        report["load_average_end"] = harness.load_average()
        text = harness.write_report(args.out, args.name, report, markdown(report))
        print(f"{task} done", file=sys.stderr)
    print(text)
    return 0
