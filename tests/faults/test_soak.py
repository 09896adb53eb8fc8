"""Soak: 10,000 requests through one ``docfn serve`` process, 1,000 of them real inferences (a new
input every tenth request: the cache cannot answer it), the rest cache hits of 50 cycled pages.
Resident memory is sampled from /proc and ``/metrics`` is read as it runs. After warm-up RSS must not
grow by more than 5 % (a leak shows as steady growth, request after request) and ``/metrics`` must
stay the same size (a label per input or per request would grow it without end). The smallest real
inputs (a 112x112 image of a number each, about 0.16 s of OCR on 2 cores) keep it to a few minutes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from docfn_testkit.inputs import word_square
from docfn_testkit.load import Load, figure, percentile, rss_bytes, statuses
from docfn_testkit.servers import DocfnServer

TOTAL = 10_000
WARM_UP = 2_000
CYCLED = 50
FRESH = 100_000
EVERY = 10  # one new input in ten: 1,000 real inferences
METRICS_SLACK = 1.05  # histogram sums and counters gain digits; nothing else may grow


def _pick(index: int) -> int:
    """50 pages sent over and over, and a new page every tenth request (1,000 computed in all)."""
    return FRESH + index if index % EVERY == 0 else index % CYCLED


def test_ten_thousand_requests_without_memory_growth(model_store: Path) -> None:
    server = DocfnServer(
        {"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "ocr", "DOCFN_MAX_QUEUE": "16"}
    ).start()
    assert server.process is not None
    pid = server.process.pid
    samples: list[tuple[int, int]] = []  # (replies so far, RSS bytes)
    metrics: list[tuple[int, int]] = []  # (replies so far, /metrics bytes)
    started = time.monotonic()
    try:
        load = Load(server.url, _pick, word_square, total=TOTAL, clients=4).start()
        stop = threading.Event()

        def sample() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                while not stop.wait(0.25):
                    samples.append((load.done, rss_bytes(pid)))
                    if len(samples) % 8 == 0:  # every 2 s
                        metrics.append((load.done, len(client.get("/metrics").content)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        replies = load.join(timeout=900)
        stop.set()
        sampler.join()
        samples.append((load.done, rss_bytes(pid)))
        with httpx.Client(base_url=server.url, timeout=30) as client:
            metrics.append((load.done, len(client.get("/metrics").content)))
    finally:
        server.stop()
    elapsed = time.monotonic() - started

    counts = statuses(replies)
    assert counts == {200: TOTAL}, counts
    warm = next(rss for done, rss in samples if done >= WARM_UP)
    after = [rss for done, rss in samples if done >= WARM_UP]
    final, peak = after[-1], max(after)
    growth = 100 * (final - warm) / warm
    assert growth <= 5.0, f"RSS grew {growth:.1f} % after warm-up ({warm} -> {final} bytes)"
    hits = sum(1 for r in replies if r.body and r.body["cached"])
    assert TOTAL - hits >= TOTAL // EVERY, f"only {TOTAL - hits} real inferences"
    metrics_warm = next(size for done, size in metrics if done >= WARM_UP)
    metrics_end = metrics[-1][1]
    assert metrics_end <= metrics_warm * METRICS_SLACK, f"/metrics grew {metrics_warm} -> {metrics_end} bytes"
    figure("soak.requests", f"{TOTAL} ({hits} cache hits, {TOTAL - hits} computed)")
    figure(
        "soak.rss_mb", f"after warm-up {warm / 2**20:.1f}, peak {peak / 2**20:.1f}, end {final / 2**20:.1f}"
    )
    figure("soak.rss_growth_pct", round(growth, 2))
    figure("soak.p99_s", round(percentile([r.seconds for r in replies], 99), 3))
    figure("soak.metrics_bytes", f"after warm-up {metrics_warm}, end {metrics_end}")
    figure("soak.seconds", round(elapsed, 1))
