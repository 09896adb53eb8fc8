"""The one place ONNX Runtime sessions are built: once per model file, thread-safe, sized to the CPU quota."""

from __future__ import annotations

import threading
from pathlib import Path

import onnxruntime as ort

from .cpus import available_cpus

_sessions: dict[tuple[str, int, bool, bool], ort.InferenceSession] = {}
_lock = threading.Lock()
_shared_arena_registered = False


def session_options(
    threads: int = 0,
    level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    mem_pattern: bool = True,
    shared_arena: bool = False,
) -> ort.SessionOptions:
    """How every docfn session is configured: ``threads`` intra-op threads (0 = the CPU quota), one
    inter-op thread, sequential execution, quiet logs, and no spin-waiting.

    ONNX Runtime's pool threads spin between the many small runs of a page (one per text line) by
    default, burning the CPU the Python thread preparing the next crop, another request or a
    neighbour needs (``scripts/bench.py onnx_spinning``, 2 cores): with spinning, two requests at once
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
    if shared_arena:
        options.add_session_config_entry("session.use_env_allocators", "1")
    return options


def _register_shared_arena() -> None:
    """One CPU arena for every session that asks for it, grown by exactly what a run requests.

    Each session otherwise has an arena of its own that grows by powers of two and keeps its peak:
    OCR's detector (a different page size every run) and recogniser (a different line width every
    run) each held their own high-water mark, rounded up. Shared and grown as requested, the OCR
    function's in-process peak RSS went 318-327 -> 295 MB over the ten devset pages at the same
    per-page latency (0.92-1.0x, same run; ``scripts/bench.py memory``). Without any arena (plain
    malloc) the peak rose to 411-418 MB. Called with ``_lock`` held.
    """
    global _shared_arena_registered
    if _shared_arena_registered:
        return
    # max_mem 0 (no cap), arena_extend_strategy 1 (kSameAsRequested), default chunk settings.
    config = ort.OrtArenaCfg(0, 1, -1, -1)
    memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(memory, config)
    _shared_arena_registered = True


def new_session(model_path: Path, options: ort.SessionOptions) -> ort.InferenceSession:
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def get_session(
    model_path: Path, threads: int = 0, mem_pattern: bool = True, shared_arena: bool = False
) -> ort.InferenceSession:
    """A cached InferenceSession (``run`` is thread-safe in ONNX Runtime) for ``model_path``;
    ``shared_arena``: tensors from the process's one shared CPU arena (see _register_shared_arena)."""
    intra = threads or available_cpus()
    key = (str(model_path), intra, mem_pattern, shared_arena)
    session = _sessions.get(key)
    if session is not None:
        return session
    with _lock:
        session = _sessions.get(key)
        if session is None:
            if shared_arena:
                _register_shared_arena()
            options = session_options(intra, mem_pattern=mem_pattern, shared_arena=shared_arena)
            session = new_session(model_path, options)
            _sessions[key] = session
    return session
