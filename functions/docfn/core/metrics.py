"""Prometheus metrics (requests, latency, errors, cache hits, cold starts, model load time)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("docfn_requests_total", "Requests by task and status", ["task", "status"])
LATENCY = Histogram(
    "docfn_request_seconds",
    "Request latency by task",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
ERRORS = Counter("docfn_errors_total", "Errors by task and code", ["task", "code"])
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
