"""docfn's entry points cap glibc's malloc arenas before threads start (docfn.core.malloc_arenas):
counted with glibc's own malloc_info after threads have each allocated, in fresh interpreters."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="glibc on Linux")

# Eight threads alive at once, each allocating; then glibc's count of heaps (one per arena).
COUNT_ARENAS = textwrap.dedent(
    """
    import ctypes, re, sys, tempfile, threading

    libc = ctypes.CDLL("libc.so.6")
    barrier = threading.Barrier(9)
    held = []

    def allocate():
        held.append(libc.malloc(4096))
        barrier.wait()
        barrier.wait()

    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for thread in threads:
        thread.start()
    barrier.wait()
    libc.fopen.restype = ctypes.c_void_p
    with tempfile.NamedTemporaryFile(suffix=".xml") as report:
        stream = libc.fopen(report.name.encode(), b"w")
        libc.malloc_info(0, ctypes.c_void_p(stream))
        libc.fclose(ctypes.c_void_p(stream))
        heaps = len(re.findall(r'<heap nr="', open(report.name).read()))
    barrier.wait()
    for thread in threads:
        thread.join()
    print(heaps)
    """
)


def arenas_after(setup: str, env: dict[str, str] | None = None) -> int:
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", setup + "\n" + COUNT_ARENAS],
        env={**environment, **(env or {})},
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return int(done.stdout.strip().splitlines()[-1])


def test_threads_get_arenas_of_their_own_by_default() -> None:
    # What the cap is for: without it, the eight threads allocate in several arenas.
    assert arenas_after("") > 2


def test_cap_holds_for_threads_started_after_it() -> None:
    setup = "from docfn.core.malloc_arenas import limit_malloc_arenas\nassert limit_malloc_arenas()"
    assert arenas_after(setup) <= 2


def test_explicit_malloc_arena_max_wins() -> None:
    setup = "from docfn.core.malloc_arenas import limit_malloc_arenas\nassert not limit_malloc_arenas()"
    assert arenas_after(setup, {"MALLOC_ARENA_MAX": "8"}) > 2


def test_command_line_caps_arenas_before_it_runs_a_command() -> None:
    setup = textwrap.dedent(
        """
        from docfn.adapters.cli.main import main
        try:
            main(["--help"])
        except SystemExit:
            pass
        """
    )
    assert arenas_after(setup) <= 2


def test_lambda_handler_import_caps_arenas() -> None:
    setup = "import docfn.adapters.aws_lambda.handler"
    assert arenas_after(setup, {"DOCFN_EAGER_LOAD": "0"}) <= 2
