"""glibc's malloc, set by a docfn process before it starts any thread: two arenas, and freed page
buffers kept for the next page.

**Arenas.** glibc gives a thread that allocates while another holds the main heap an arena of its
own, up to 8 per core, and an arena keeps what was freed in it. A server's threads (the HTTP worker
threads that decode and answer requests, the compute pool reading lines, the eager load) each end
up holding page-sized buffers in a different arena, so the process grows with every thread that
ever touched a page. Measured with ``scripts/bench.py memory`` (``docfn serve --tasks ocr``, 2
cores, 1 to 8 concurrent clients): peak RSS 497 MB with glibc's default, 328 MB with two arenas
(docs/benchmarks/memory_ocr.md). ONNX Runtime's tensors come from its own arena, so two malloc
arenas do not serialise inference.

**Page buffers.** A page's buffers (the decoded image, its RGB copy, the detector's input: 6-9 MB
each at 150 dpi) are far above glibc's starting mmap threshold (128 KiB). glibc raises that
threshold as mmapped blocks are freed, and trims the heap's top above twice it, but where that
settles depends on what the process allocated before: in an OCR process, once ONNX Runtime is
imported, every page's buffers came fresh from the kernel again, about 6,000 page faults a devset
page (its decode 0.037 s instead of 0.021 s). Fixed thresholds keep them: allocations up to 32 MiB
(glibc's ceiling for the mmap threshold) come from the heap, and a heap's top is handed back only
past 32 MiB free; 13-70 faults a page (docs/benchmarks.md, "Freed page buffers kept"). Keeping more
costs memory: with 64 MiB, parse's peak under 8 clients was 603 MB against 563 MB (its budget: 600).

glibc fixes the arena cap when it creates its second arena, so this must run before threads start:
the entry points call it first (``docfn`` on the command line, the Lambda handler's import). What
the environment sets for glibc's malloc wins: ``MALLOC_ARENA_MAX`` for the arenas; any of glibc's
threshold variables, or any ``glibc.malloc`` tunable in ``GLIBC_TUNABLES``, for the thresholds
(glibc reads them itself, and an explicit threshold turns its own adjustment off).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

# mallopt's parameter numbers in glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

ARENAS = 2
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc refuses more (half its 64-MiB heap size)
TRIM_THRESHOLD = 32 * 1024 * 1024
# A glibc.malloc tunable at glibc's own default (a tcache of 7 entries): in GLIBC_TUNABLES it makes
# keep_page_buffers leave the thresholds to glibc and changes nothing else, for this process or a
# child that inherits it (the memory benchmark's "glibc_thresholds", the test kit's CLI runner).
GLIBC_DEFAULT_TUNABLE = "glibc.malloc.tcache_count=7"
# glibc's own variables for what keep_page_buffers sets (any one of them turns its adjustment off).
THRESHOLD_VARIABLES = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
)


def _mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, or None where it is not glibc's to do (another libc or OS)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl and others: no libc.so.6
        return None
    return getattr(libc, "mallopt", None)


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas``; False where that is not glibc's to do or
    ``MALLOC_ARENA_MAX`` is already set."""
    mallopt = _mallopt()
    if "MALLOC_ARENA_MAX" in os.environ or mallopt is None:
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))


def keep_page_buffers(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Fix glibc's mmap and trim thresholds so that freed page buffers are reused, not handed back
    to the kernel; False where that is not glibc's to do or the environment configures them."""
    mallopt = _mallopt()
    configured = any(name in os.environ for name in THRESHOLD_VARIABLES)
    if configured or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "") or mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))


def configure_malloc() -> None:
    """What a docfn process sets before its first thread: :func:`limit_malloc_arenas` and
    :func:`keep_page_buffers`."""
    limit_malloc_arenas()
    keep_page_buffers()
