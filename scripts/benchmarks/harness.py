"""The one harness every benchmark section runs on: timing and the interleaving of peers, closed-loop
HTTP load, resident memory from /proc, the machine's description, the devset's pages, servers on
loopback (from docfn_testkit.servers, as the tests use them) and the reports.

A report is a JSON and a Markdown file under docs/benchmarks/ (``--out``); both carry the exact
command that produced them (``command()``, set by scripts/bench.py from its own argv), so a number
in the docs always names how to make it again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
import numpy as np

from docfn.core.cpus import available_cpus
from docfn_testkit import caches, paths
from docfn_testkit.servers import DocfnServer

ROOT = paths.ROOT
ENTRY = ROOT / "scripts" / "bench.py"
OUT = ROOT / "docs" / "benchmarks"
# Where --quick writes unless --out says otherwise: a smoke run must not overwrite the measured
# reports in docs/benchmarks (.docfn/ is git-ignored).
QUICK_OUT = ROOT / ".docfn" / "bench-quick"
# Debian packages holding real multi-page PDFs (typeset manuals), and the PDF each installs: the
# only inputs beside the repository's own test data (apt-get installs them; see parse_fidelity).
PDFS: dict[str, tuple[str, Path]] = {
    "manual (texinfo)": ("libtasn1-doc", Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf")),
    "spec (DocBook)": ("shared-mime-info", Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf")),
}

T = TypeVar("T")
X = TypeVar("X")

# --- the command -------------------------------------------------------------------------------

_command = "scripts/bench.py"


def set_command(argv: Sequence[str]) -> None:
    """Record the command line (scripts/bench.py's arguments) every report of this run names."""
    global _command
    _command = shlex.join(["scripts/bench.py", *argv])


def command() -> str:
    return _command


def section_command(section: str, *args: str) -> list[str]:
    """argv that runs a section (or a section's child phase) in a fresh process of this interpreter."""
    return [sys.executable, str(ENTRY), section, *args]


# --- options every section shares ----------------------------------------------------------------


def add_devset_arguments(parser: argparse.ArgumentParser, pages: int = 0) -> None:
    """``--devset`` and ``--pages`` for sections that read the devset (tests/data/devset); ``pages``
    is the section's default count (0: all)."""
    parser.add_argument(
        "--devset", type=Path, default=paths.DEVSET, help="pages + text layers + manifest.json"
    )
    parser.add_argument(
        "--pages",
        type=int,
        default=None,
        help=f"devset pages, evenly spread over its categories (0: all; default {pages or 'all'};"
        " --quick: 1)",
    )
    parser.set_defaults(section_pages=pages)


def add_store_argument(parser: argparse.ArgumentParser, default: str = "DOCFN_MODEL_STORE") -> None:
    parser.add_argument("--store", type=Path, default=None, help=f"model store (default: {default})")


def model_store(args: argparse.Namespace) -> Path:
    from docfn.core.settings import Settings

    return args.store or Settings().model_store


def devset_ids(args: argparse.Namespace, quick_pages: int = 1) -> list[str]:
    """The ids ``--pages`` (else ``--quick``, else the section's default) selects, in manifest order."""
    from docfn.tooling.evaluate import page_ids, spread

    ids = page_ids(args.devset)
    default = quick_pages if args.quick else args.section_pages
    count = default if args.pages is None else args.pages
    return spread(ids, count or len(ids))


def temp_store(prefix: str) -> Path:
    """An empty model store that still finds the wheels packs are built from (the machine's cache)."""
    store = Path(tempfile.mkdtemp(prefix=prefix))
    caches.WHEELS.mkdir(parents=True, exist_ok=True)
    (store / "_wheels").symlink_to(caches.WHEELS)
    return store


# --- timing --------------------------------------------------------------------------------------


def timed(run: Callable[[], T]) -> tuple[T, float]:
    """``run()``'s result and its wall seconds."""
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


@dataclass(frozen=True)
class Sample(Generic[T]):
    """One timed call: its result, wall seconds and this process's CPU seconds."""

    result: T
    seconds: float
    cpu_seconds: float


def sample(run: Callable[[], T]) -> Sample[T]:
    cpu = time.process_time()
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    return Sample(result, seconds, time.process_time() - cpu)


def interleaved(
    runners: Mapping[str, Callable[[X], T]], inputs: Sequence[X], rounds: int = 1, warm_up: bool = True
) -> dict[str, list[list[Sample[T]]]]:
    """Every runner on every input, interleaved: round by round, input by input, each runner in turn
    (load on a shared machine drifts: peers measured side by side see the same drift). ``warm_up``
    first runs each once on the first input (first-run allocations are not per-input cost).

    Returns ``samples[runner][input index]``: one Sample per round."""
    if warm_up:
        for run in runners.values():
            run(inputs[0])
    samples: dict[str, list[list[Sample[T]]]] = {key: [[] for _ in inputs] for key in runners}
    for _ in range(rounds):
        for index, item in enumerate(inputs):
            for key, run in runners.items():
                samples[key][index].append(sample(lambda run=run, item=item: run(item)))
    return samples


def summary(seconds: Sequence[float]) -> dict[str, float]:
    """Median and p90 (nearest rank) of per-page seconds."""
    ordered = sorted(seconds)
    p90 = ordered[min(len(ordered) - 1, int(np.ceil(0.9 * len(ordered))) - 1)]
    return {"median": round(statistics.median(ordered), 4), "p90": round(p90, 4), "n": len(ordered)}


# --- HTTP load -----------------------------------------------------------------------------------


def post(client: httpx.Client, task: str, data: bytes, query: str = "") -> float:
    """One page to ``/v1/TASK``: its seconds (the response must succeed)."""
    response, spent = timed(
        lambda: client.post(f"/v1/{task}{query}", content=data, headers={"content-type": "image/png"})
    )
    response.raise_for_status()
    return spent


def throughput(
    base_url: str, documents: list[bytes], clients: int, requests: int, task: str = "ocr"
) -> dict[str, float]:
    """``clients`` closed-loop clients sending ``requests`` pages in all: pages/s and latencies."""
    counter = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []

    def client_loop() -> None:
        with httpx.Client(base_url=base_url, timeout=600) as client:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                # A distinct min_confidence per request: every request misses the result cache.
                query = f"?min_confidence={0.5 + index * 1e-6:.6f}" if task == "ocr" else ""
                spent = post(client, task, documents[index % len(documents)], query)
                with lock:
                    latencies.append(spent)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client_loop) for _ in range(clients)]:
            future.result()
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "pages_per_s": round(requests / wall, 3),
        "median_s": round(statistics.median(ordered), 3),
        "p99_s": round(ordered[min(len(ordered) - 1, int(np.ceil(0.99 * len(ordered))) - 1)], 3),
    }


def docfn_server(env: Mapping[str, str]) -> DocfnServer:
    """``docfn serve`` (docfn_testkit's DocfnServer) started with ``env`` over this environment."""
    return DocfnServer(
        {
            "DOCFN_LOG_LEVEL": "WARNING",
            # A benchmark queues more clients than cores on a possibly busy machine: measure their
            # wait, do not answer it with 504.
            "DOCFN_INFERENCE_TIMEOUT_SECONDS": "3600",
            **env,
        }
    ).start()


def server_pid(server: DocfnServer) -> int:
    assert server.process is not None, "the server was not started"
    return server.process.pid


# --- memory --------------------------------------------------------------------------------------


def status_mb(pid: int | str = "self") -> dict[str, float]:
    """A process's resident set now (VmRSS) and its high-water mark (VmHWM), in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(line.split()[1]) / 1024, 1)
    return {"rss": fields["VmRSS"], "hwm": fields["VmHWM"]}


def peak_rss_mb(pid: int | str = "self") -> float:
    """The process's high-water resident set (VmHWM), in MB."""
    return status_mb(pid)["hwm"]


def rollup_mb(pid: int | str = "self") -> dict[str, float]:
    """Anonymous and file-backed resident memory (shared libraries, mapped models) in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":")[0], line.split()[1]
        if key in ("Anonymous", "Rss"):
            fields[key] = round(int(value) / 1024, 1)
    return {"anonymous": fields["Anonymous"], "file": round(fields["Rss"] - fields["Anonymous"], 1)}


# --- the machine ---------------------------------------------------------------------------------


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages: other work on the shared machine shows here."""
    return [round(v, 2) for v in os.getloadavg()]


def machine() -> dict[str, Any]:
    return {
        "cpus": available_cpus(),
        "python": platform.python_version(),
        "processor": platform.machine(),
        "load_average": load_average(),
    }


# --- reports -------------------------------------------------------------------------------------


def attributed(markdown: str, made_by: str | None = None) -> str:
    """The report with the command that made it, under its title (or first, without one)."""
    line = f"Made by `{made_by or command()}`."
    lines = markdown.strip("\n").splitlines()
    if lines and lines[0].startswith("# "):
        rest = lines[1:]
        return "\n".join([lines[0], "", line, *([""] if rest and rest[0] else []), *rest]) + "\n"
    return "\n".join([line, "", *lines]) + "\n"


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(out: Path, name: str, data: Mapping[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    document = {"command": command(), **{k: v for k, v in data.items() if k != "command"}}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=_plain) + "\n")
    return path


def write_report(out: Path, name: str, data: Mapping[str, Any], markdown: str) -> str:
    """``out/NAME.json`` and ``out/NAME.md``, both naming the command; the Markdown as written."""
    write_json(out, name, data)
    text = attributed(markdown)
    (out / f"{name}.md").write_text(text)
    return text
