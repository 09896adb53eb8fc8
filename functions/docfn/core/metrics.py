"""Prometheus metrics (requests, latency, errors, cache hits, cold starts, model load time).

Labels a caller can influence (task, status, error code) are recorded through the functions at the
end of this module, which keep every value in a fixed set (``docfn.core.labels``): /metrics must not
grow with the paths callers make up.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from .labels import error_label, status_label, task_label

REQUESTS = Counter("docfn_requests_total", "Requests by task and status", ["task", "status"])
LATENCY = Histogram(
    "docfn_request_seconds",
    "Request latency by task",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
ERRORS = Counter("docfn_errors_total", "Errors by task and code", ["task", "code"])
# Apart from ERRORS: a caller hanging up mid-upload is not something the server got wrong.
CLIENT_DISCONNECTS = Counter(
    "docfn_client_disconnects_total", "Requests whose client left before its body was read (499)", ["task"]
)
CACHE_LOOKUPS = Counter("docfn_cache_lookups_total", "Result cache lookups", ["task", "result"])
CACHE_FAILURES = Counter(
    "docfn_cache_failures_total",
    "Result cache calls that failed (error) or were skipped by the open circuit breaker (circuit_open)",
    ["op", "reason"],
)
CACHE_CIRCUIT_OPEN = Gauge("docfn_cache_circuit_open", "1 while the Redis circuit breaker skips Redis")
COLD_STARTS = Counter("docfn_cold_starts_total", "Model loads (cold starts) by task", ["task"])
MODEL_LOAD_SECONDS = Histogram(
    "docfn_model_load_seconds",
    "Model pack fetch+verify+session time",
    ["task"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
MODEL_LOAD_FAILURES = Counter("docfn_model_load_failures_total", "Failed model loads", ["task"])
PHASE_SECONDS = Histogram("docfn_phase_seconds", "Time per request phase", ["task", "phase"])
SHED = Counter("docfn_shed_total", "Requests refused because the instance queue was full")
IN_FLIGHT = Gauge("docfn_in_flight", "Requests admitted (running or queued)")
VLM_QUEUED = Gauge(
    "docfn_vlm_queued",
    "Requests holding a place in the VLM's batching queue (DOCFN_VLM_MAX_QUEUE): waiting or decoding",
)
IMPORT_SECONDS = Gauge("docfn_import_seconds", "Import phase of this process's cold start (serving code)")
VLM_BATCH_SIZE = Histogram(
    "docfn_vlm_batch_size",
    "Sequences joining the VLM's running batch together (one shared prefill)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
VLM_RUNNING = Gauge("docfn_vlm_running", "Sequences in the VLM's running batch (decoding together)")
VLM_DECODE_STEPS = Counter(
    "docfn_vlm_decode_steps_total",
    "Sequence-steps the VLM decoded: each decoder pass adds one per sequence in it (prefill included)",
)
VLM_FINISHED = Counter(
    "docfn_vlm_finished_total",
    "Sequences that left the VLM's running batch, by why (stop, length, deadline, cancelled)",
    ["reason"],
)


def count_request(task: str, status: int | str, seconds: float) -> None:
    """One request answered: its count by task and status, and its latency."""
    label = task_label(task)
    REQUESTS.labels(label, status_label(status)).inc()
    LATENCY.labels(label).observe(seconds)


def count_client_disconnect(task: str) -> None:
    CLIENT_DISCONNECTS.labels(task_label(task)).inc()


def count_error(task: str, code: str) -> None:
    ERRORS.labels(task_label(task), error_label(code)).inc()


def observe_phases(task: str, timings: dict[str, float]) -> None:
    label = task_label(task)
    for phase, seconds in timings.items():
        PHASE_SECONDS.labels(label, phase).observe(seconds)


def count_cache_lookup(task: str, hit: bool) -> None:
    CACHE_LOOKUPS.labels(task_label(task), "hit" if hit else "miss").inc()
