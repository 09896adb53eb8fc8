"""glibc's malloc arenas: a docfn process caps them at two before it starts any thread.

glibc gives a thread that allocates while another holds the main heap an arena of its own, up to
8 per core, and an arena keeps what was freed in it. A server's threads (the HTTP worker threads
that decode and answer requests, the compute pool reading lines, the eager load) each end up
holding page-sized buffers in a different arena, so the process grows with every thread that ever
touched a page. Measured with ``scripts/bench.py memory`` (``docfn serve --tasks ocr``, 2 cores, 1 to
8 concurrent clients): peak RSS 497 MB with glibc's default, 328 MB with two arenas
(docs/benchmarks/memory_ocr.md). ONNX Runtime's tensors come from its own arena, so two malloc
arenas do not serialise inference.

glibc fixes the cap when it creates its second arena, so this must run before threads start: the
entry points call it first (``docfn`` on the command line, the Lambda handler's import). An
explicit ``MALLOC_ARENA_MAX`` in the environment wins (glibc reads it itself).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas``; False where that is not glibc's to do (another
    libc or OS) or ``MALLOC_ARENA_MAX`` is already set."""
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl and others: no libc.so.6
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))
