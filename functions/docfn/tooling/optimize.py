"""Build-time graph optimisation: save ONNX Runtime's optimised graph into the pack.

The level is ORT_ENABLE_EXTENDED, not ALL: ALL adds layout transformations (NCHWc blocking) whose
block size follows the build machine's vector width (AVX2 vs AVX-512), so a graph saved at ALL is
tied to that CPU. EXTENDED (constant folding, Conv/BN/activation fusions, QDQ -> QLinear fusions,
GELU/LayerNorm fusions) is valid on any x86-64 CPU running the same ONNX Runtime; the cheap
hardware-specific ALL step still runs at session creation on the real machine. The pack records
the ONNX Runtime version it was optimised with.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import onnxruntime as ort

from ..core.onnx_sessions import new_session, session_options

LEVEL = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
LEVEL_NAME = "ORT_ENABLE_EXTENDED"


def save_optimised(source: Path, target: Path) -> None:
    options = session_options(level=LEVEL)
    options.optimized_model_filepath = str(target)
    new_session(source, options)


def session_create_seconds(model: Path, repeats: int = 5, threads: int = 0) -> float:
    """Median time to build a session the way the runtime does (``session_options``, level ALL)."""
    samples = []
    for _ in range(repeats):
        options = session_options(threads)
        start = time.perf_counter()
        new_session(model, options)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
