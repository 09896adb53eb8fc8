"""Overload: 40 concurrent clients against one process that runs one inference at a time with
four waiting. The excess is shed at once (429 + Retry-After), memory stays bounded, and the
requests that are admitted finish within the deadline (p99)."""

from __future__ import annotations

import time
from pathlib import Path

from docfn_testkit.inputs import word_page
from docfn_testkit.load import Load, Reply, figure, percentile, rss_bytes, statuses
from docfn_testkit.servers import DocfnServer

CLIENTS = 40
DEADLINE_SECONDS = 10.0


def test_forty_clients_against_capacity_five(model_store: Path) -> None:
    server = DocfnServer(
        {
            "DOCFN_MODEL_STORE": str(model_store),
            "DOCFN_TASKS": "ocr",
            "DOCFN_MAX_CONCURRENCY": "1",
            "DOCFN_MAX_QUEUE": "4",
            "DOCFN_INFERENCE_TIMEOUT_SECONDS": str(DEADLINE_SECONDS),
        }
    ).start()
    assert server.process is not None
    pid = server.process.pid
    try:
        # Warm-up at capacity (10 clients): the process reaches its working size.
        _, warm = _wave(server.url, pid, clients=10, first=1, total=150)
        # The storm: four times the clients. Memory must not follow the number of clients.
        replies, storm = _wave(server.url, pid, clients=CLIENTS, first=10_000, total=400)
    finally:
        server.stop()

    counts = statuses(replies)
    assert set(counts) <= {200, 429, 503}, counts
    assert counts.get(200, 0) > 0 and counts.get(429, 0) > 0
    assert all(r.retry_after for r in replies if r.status != 200)
    admitted = [r.seconds for r in replies if r.status == 200]
    p99 = percentile(admitted, 99)
    assert p99 <= DEADLINE_SECONDS, p99
    growth = 100 * (storm - warm) / warm
    # Bounded: 40 clients cost what the five admitted requests cost, as 10 clients did.
    assert growth <= 10.0, f"peak RSS grew {growth:.1f} % from 10 to {CLIENTS} clients"
    shed = [r.seconds for r in replies if r.status == 429]
    figure("overload.replies", counts)
    figure("overload.admitted_p50_p99_s", (round(percentile(admitted, 50), 3), round(p99, 3)))
    figure("overload.shed_p99_s", round(percentile(shed, 99), 3))
    figure(
        "overload.peak_rss_mb",
        f"10 clients {warm / 2**20:.1f}, {CLIENTS} clients {storm / 2**20:.1f} ({growth:+.1f} %)",
    )


def _wave(url: str, pid: int, *, clients: int, first: int, total: int) -> tuple[list[Reply], int]:
    """``total`` distinct requests from ``clients`` threads; the replies and the peak RSS meanwhile."""
    # Clients back off 0.2 s after a refusal (far less than the Retry-After they are given).
    load = Load(url, lambda i: first + i, word_page, total=total, clients=clients, backoff=0.2).start()
    peak = rss_bytes(pid)
    while load.running:
        peak = max(peak, rss_bytes(pid))
        time.sleep(0.1)  # the sampling period of /proc, not a wait for a condition
    return load.join(timeout=600), max(peak, rss_bytes(pid))
