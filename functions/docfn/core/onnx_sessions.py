"""The one place ONNX Runtime sessions are built: once per model file, thread-safe, sized to the CPU quota."""

from __future__ import annotations

import threading
from pathlib import Path

import onnxruntime as ort

from .cpus import available_cpus

_sessions: dict[tuple[str, int, bool], ort.InferenceSession] = {}
_lock = threading.Lock()


def session_options(
    threads: int = 0,
    level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    mem_pattern: bool = True,
) -> ort.SessionOptions:
    """How every docfn session is configured: ``threads`` intra-op threads (0 = the CPU quota), one
    inter-op thread, sequential execution, quiet logs, and no spin-waiting.

    ONNX Runtime's pool threads spin between the many small runs of a page (one per text line) by
    default, burning the CPU the Python thread preparing the next crop, another request or a
    neighbour needs (scripts/bench_onnx_spinning.py, 2 cores): with spinning, two requests at once
    got 0.70x the throughput on a quiet machine (0.46x on a busy one), and one request took 1.15x
    the CPU for the same wall time (1.74x the wall time on a busy machine). Under a CPU quota
    (Knative limits, Lambda's fractional vCPUs) spinning is throttled time.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or available_cpus()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = level
    options.log_severity_level = 3
    # The memory pattern plans one allocation per input shape seen: worth it for fixed-size inputs
    # (layout), only growth for inputs whose shape changes every run (OCR lines).
    options.enable_mem_pattern = mem_pattern
    return options


def new_session(model_path: Path, options: ort.SessionOptions) -> ort.InferenceSession:
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def get_session(model_path: Path, threads: int = 0, mem_pattern: bool = True) -> ort.InferenceSession:
    """A cached InferenceSession (``run`` is thread-safe in ONNX Runtime) for ``model_path``."""
    intra = threads or available_cpus()
    key = (str(model_path), intra, mem_pattern)
    session = _sessions.get(key)
    if session is not None:
        return session
    with _lock:
        session = _sessions.get(key)
        if session is None:
            session = new_session(model_path, session_options(intra, mem_pattern=mem_pattern))
            _sessions[key] = session
    return session
