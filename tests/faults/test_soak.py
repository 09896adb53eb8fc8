"""Soak: 10,000 requests through one ``docfn serve`` process, resident memory sampled from /proc.
After warm-up it must not grow by more than 5 % (a leak shows as steady growth, request after
request). Small distinct inputs keep it to minutes: mostly cache hits, one new page in 200."""

from __future__ import annotations

import threading
from pathlib import Path

from docfn_testkit.inputs import word_page
from docfn_testkit.load import Load, figure, percentile, rss_bytes, statuses
from docfn_testkit.servers import DocfnServer

TOTAL = 10_000
WARM_UP = 2_000
CYCLED = 50
FRESH = 100_000


def _pick(index: int) -> int:
    """50 pages sent over and over, and one new page every 200 requests (100 computed in all)."""
    return FRESH + index if index % 200 == 0 else index % CYCLED


def test_ten_thousand_requests_without_memory_growth(model_store: Path) -> None:
    server = DocfnServer(
        {"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "ocr", "DOCFN_MAX_QUEUE": "16"}
    ).start()
    assert server.process is not None
    pid = server.process.pid
    samples: list[tuple[int, int]] = []  # (replies so far, RSS bytes)
    try:
        load = Load(server.url, _pick, word_page, total=TOTAL, clients=4).start()
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.25):
                samples.append((load.done, rss_bytes(pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        replies = load.join(timeout=900)
        stop.set()
        sampler.join()
        samples.append((load.done, rss_bytes(pid)))
    finally:
        server.stop()

    counts = statuses(replies)
    assert counts == {200: TOTAL}, counts
    warm = next(rss for done, rss in samples if done >= WARM_UP)
    after = [rss for done, rss in samples if done >= WARM_UP]
    final, peak = after[-1], max(after)
    growth = 100 * (final - warm) / warm
    assert growth <= 5.0, f"RSS grew {growth:.1f} % after warm-up ({warm} -> {final} bytes)"
    hits = sum(1 for r in replies if r.body and r.body["cached"])
    figure("soak.requests", f"{TOTAL} ({hits} cache hits, {TOTAL - hits} computed)")
    figure(
        "soak.rss_mb", f"after warm-up {warm / 2**20:.1f}, peak {peak / 2**20:.1f}, end {final / 2**20:.1f}"
    )
    figure("soak.rss_growth_pct", round(growth, 2))
    figure("soak.p99_s", round(percentile([r.seconds for r in replies], 99), 3))
