"""docfn's entry points set glibc's malloc before threads start (docfn.core.malloc_policy): the
arenas counted with glibc's own malloc_info after threads have each allocated, and the page
buffers' reuse counted in page faults while a real page is decoded again and again, in fresh
interpreters."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from docfn.core.malloc_policy import THRESHOLD_VARIABLES

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


# The sample page decoded by the service's own decoder, with ONNX Runtime imported as in an OCR
# process; then the minor page faults of five more decodes, a page each, and the RGB array's own
# size in 4-KiB pages (each decode allocates a few times that: Pillow's image, its copy, the array).
COUNT_PAGE_FAULTS = textwrap.dedent(
    """
    import resource
    import onnxruntime
    from docfn.core.documents import DecodeLimits, open_document
    from docfn_testkit.paths import SAMPLE_PAGE

    data = SAMPLE_PAGE.read_bytes()

    def decode():
        document = open_document(data, "image/png", DecodeLimits(max_pixels=10**8, max_pages=1), len(data))
        try:
            return document.render(0).image
        finally:
            document.close()

    pages = decode().nbytes // 4096
    decode()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        decode()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5, pages)
    """
)
MALLOC_VARIABLES = ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES", *THRESHOLD_VARIABLES)
# docfn's two entry points, as a fresh interpreter meets them.
COMMAND_LINE = textwrap.dedent(
    """
    from docfn.adapters.cli.main import main
    try:
        main(["--help"])
    except SystemExit:
        pass
    """
)
LAMBDA_HANDLER = "import docfn.adapters.aws_lambda.handler"


def run_fresh(code: str, env: dict[str, str] | None = None) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in MALLOC_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**environment, **(env or {})},
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return done.stdout.strip().splitlines()[-1]


def arenas_after(setup: str, env: dict[str, str] | None = None) -> int:
    return int(run_fresh(setup + "\n" + COUNT_ARENAS, env))


def faults_per_decode(setup: str, env: dict[str, str] | None = None) -> tuple[float, int]:
    faults, pages = run_fresh(setup + "\n" + COUNT_PAGE_FAULTS, env).split()
    return float(faults), int(pages)


def test_threads_get_arenas_of_their_own_by_default() -> None:
    # What the cap is for: without it, the eight threads allocate in several arenas.
    assert arenas_after("") > 2


def test_cap_holds_for_threads_started_after_it() -> None:
    setup = "from docfn.core.malloc_policy import limit_malloc_arenas\nassert limit_malloc_arenas()"
    assert arenas_after(setup) <= 2


def test_explicit_malloc_arena_max_wins() -> None:
    setup = "from docfn.core.malloc_policy import limit_malloc_arenas\nassert not limit_malloc_arenas()"
    assert arenas_after(setup, {"MALLOC_ARENA_MAX": "8"}) > 2


def test_command_line_caps_arenas_before_it_runs_a_command() -> None:
    assert arenas_after(COMMAND_LINE) <= 2


def test_lambda_handler_import_caps_arenas() -> None:
    assert arenas_after(LAMBDA_HANDLER, {"DOCFN_EAGER_LOAD": "0"}) <= 2


def test_freed_page_buffers_are_reused_not_faulted_in_again() -> None:
    setup = "from docfn.core.malloc_policy import keep_page_buffers\nassert keep_page_buffers()"
    faults, pages = faults_per_decode(setup)
    assert faults < 0.05 * pages  # about 7,400 a decode (4.6x the array's pages) without it, here


@pytest.mark.parametrize(
    "env",
    [{"MALLOC_TRIM_THRESHOLD_": "131072"}, {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072"}],
    ids=["variable", "tunable"],
)
def test_thresholds_set_in_the_environment_win(env: dict[str, str]) -> None:
    # glibc's own start value, set explicitly: glibc then adjusts nothing, so every page-sized
    # buffer is mapped and unmapped again, and docfn leaves it that way.
    setup = "from docfn.core.malloc_policy import keep_page_buffers\nassert not keep_page_buffers()"
    faults, pages = faults_per_decode(setup, env)
    assert faults > pages


def test_entry_points_keep_page_buffers() -> None:
    for setup in (LAMBDA_HANDLER, COMMAND_LINE):
        faults, pages = faults_per_decode(setup, {"DOCFN_EAGER_LOAD": "0"})
        assert faults < 0.05 * pages, setup
