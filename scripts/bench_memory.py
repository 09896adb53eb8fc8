#!/usr/bin/env python3
"""Where an OCR function's memory goes (issue 18: peak RSS at most 400 MB under load).

For each variant (a name and environment variables over a deployment's defaults), in fresh
processes:

- ``stages``: in-process, the resident set after importing docfn's service, after the pack is
  loaded (sessions built), after the first page and after every devset page, with the high-water
  mark (VmHWM), the anonymous / file-backed split at the end (/proc/PID/smaps_rollup), the Python
  heap's own peak (tracemalloc, ``--tracemalloc``: slow) and the warm per-page latency (median).
  Variants run round-robin, ``--rounds`` times: latencies are compared as ratios to the first
  variant's in the same run.
- ``load``: ``docfn serve --tasks <task>`` as a Knative deployment runs it (eager load, one request
  inferring at a time), VmHWM when ready, after the first page and after 1, 2, 4, 8 concurrent
  clients have posted every devset page between them (no result cache).

    .venv/bin/python scripts/bench_memory.py [--tasks ocr,layout,parse] [--sections stages,load]
        [--variants glibc_default,two_arenas] [--pages N] [--rounds N] [--out DIR] [--name memory]

Writes docs/benchmarks/<name>.{json,md}.
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

from benchlib import DEVSET, OUT, machine, start_docfn, status_mb, stop, write_report

# What a deployment sets (knative/base/config.yaml) that changes memory: models loaded at start,
# one inference at a time; the benchmark's clients wait instead of getting 504.
DEPLOYMENT_ENV = {"DOCFN_EAGER_LOAD": "1", "DOCFN_MAX_CONCURRENCY": "1"}
CLIENTS = (1, 2, 4, 8)
# What each variant adds to the environment; the first is the reference of the latency ratios.
# "glibc_default" is glibc's own arena cap on this machine (8 per core) in place of the two that
# docfn's entry points set (docfn.core.malloc_arenas).
VARIANTS: dict[str, dict[str, str]] = {
    "glibc_default": {"MALLOC_ARENA_MAX": str(8 * (os.cpu_count() or 1))},
    "two_arenas": {},
}


def rollup_mb(pid: int | str = "self") -> dict[str, float]:
    """Anonymous and file-backed resident memory (shared libraries, mapped models) in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":")[0], line.split()[1]
        if key in ("Anonymous", "Rss"):
            fields[key] = round(int(value) / 1024, 1)
    return {"anonymous": fields["Anonymous"], "file": round(fields["Rss"] - fields["Anonymous"], 1)}


def page_files(devset: Path, pages: int = 0) -> list[Path]:
    """The devset's pages, the first ``pages`` of them (0: all)."""
    files = sorted(devset.glob("*.png"))
    return files[:pages] if pages else files


# --- in-process stages (run in a child process per variant) -----------------------------------


def child_stages(task: str, devset: Path, pages: int, trace: bool) -> dict[str, Any]:
    if trace:
        import tracemalloc

        tracemalloc.start()
    from docfn.core.malloc_arenas import limit_malloc_arenas

    limit_malloc_arenas()  # as docfn's entry points do, before any thread
    stages: dict[str, Any] = {}
    from docfn.adapters.wiring import build_service
    from docfn.core.settings import Settings

    stages["import"] = status_mb()
    service = build_service(Settings(tasks=[task], memory_cache_entries=0))
    service.load_all(eager=True)
    stages["loaded"] = status_mb()
    documents = [path.read_bytes() for path in page_files(devset, pages)]
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


def run_child(task: str, env: dict[str, str], devset: Path, pages: int, trace: bool) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        "--tasks",
        task,
        "--devset",
        str(devset),
        "--pages",
        str(pages),
    ]
    if trace:
        command.append("--tracemalloc")
    done = subprocess.run(
        command, env={**os.environ, **DEPLOYMENT_ENV, **env}, check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_stages(
    task: str, variants: dict[str, dict[str, str]], devset: Path, pages: int, rounds: int, trace: bool
) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for _ in range(rounds):  # round-robin: a variant's neighbours in time are the other variants
        for name, env in variants.items():
            runs[name].append(run_child(task, env, devset, pages, trace))
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
    task: str, env: dict[str, str], devset: Path, pages: int, store: Path | None
) -> dict[str, Any]:
    from bench import throughput  # the suite's closed-loop clients (not imported by --child)

    documents = [path.read_bytes() for path in page_files(devset, pages)]
    # No result cache: every level posts the same pages again, and every post must infer.
    extra = {"DOCFN_TASKS": task, "DOCFN_MEMORY_CACHE_ENTRIES": "0", **DEPLOYMENT_ENV, **env}
    if store is not None:
        extra["DOCFN_MODEL_STORE"] = str(store)
    proc, url = start_docfn(extra)
    try:
        wait_ready(url)
        row: dict[str, Any] = {"ready": status_mb(proc.pid)}
        throughput(url, documents[:1], 1, 1, task)
        row["first_page"] = status_mb(proc.pid)
        for clients in CLIENTS:
            throughput(url, documents, clients, max(len(documents), clients), task)  # every page, once
            row[f"clients_{clients}"] = status_mb(proc.pid)
        row["rollup"] = rollup_mb(proc.pid)
        row["peak_mb"] = row[f"clients_{CLIENTS[-1]}"]["hwm"]
        return row
    finally:
        stop(proc)


def markdown(report: dict[str, Any]) -> str:
    out = [
        f"`scripts/bench_memory.py` on {report['machine']['cpus']} CPUs, {report['pages']} devset pages;"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"from {list(VARIANTS)}")
    parser.add_argument("--tasks", default="ocr", help="comma list: ocr, layout, parse")
    parser.add_argument("--sections", default="stages,load")
    parser.add_argument("--rounds", type=int, default=2, help="in-process runs per variant")
    parser.add_argument("--devset", type=Path, default=DEVSET)
    parser.add_argument("--pages", type=int, default=0, help="the first N devset pages (0: all)")
    parser.add_argument("--store", type=Path, default=None, help="model store (default: DOCFN_MODEL_STORE)")
    parser.add_argument("--tracemalloc", action="store_true", help="the Python heap's peak too (slow)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--name", default="memory", help="report file name, without .json / .md")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_stages(args.tasks, args.devset, args.pages, args.tracemalloc)))
        return
    if args.store is not None:
        os.environ["DOCFN_MODEL_STORE"] = str(args.store)
    variants = {name: VARIANTS[name] for name in args.variants.split(",")}
    sections = args.sections.split(",")
    report: dict[str, Any] = {
        "machine": machine(),
        "pages": len(page_files(args.devset, args.pages)),
        "tasks": {},
    }
    for task in args.tasks.split(","):
        section: dict[str, Any] = {}
        if "stages" in sections:
            section["stages"] = bench_stages(
                task, variants, args.devset, args.pages, args.rounds, args.tracemalloc
            )
        if "load" in sections:
            section["load"] = {
                name: bench_load(task, env, args.devset, args.pages, args.store)
                for name, env in variants.items()
            }
        report["tasks"][task] = section
        report["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
        write_report(args.out, args.name, report, markdown(report))
        print(f"{task} done", file=sys.stderr)
    print(markdown(report))


if __name__ == "__main__":
    main()
