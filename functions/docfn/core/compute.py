"""A process-wide pool of inference threads: at most ``threads`` model runs at once, whoever asks.

OCR spends most of a page in many small recogniser runs (one per text line). ONNX Runtime's
intra-op threads barely speed those up, and two requests with two intra-op threads each
oversubscribe two cores (issue 18: 2.0 pages/s one at a time, 1.6-1.8 with two at once). Instead
every session is single-threaded and the work of a page is spread over this pool: one request
alone uses every core (its lines are read in parallel), and more requests only queue for the same
``threads`` workers, so more concurrency cannot lower throughput.

Callers never compute on their own thread while they hold a pool worker, and a worker never waits
for another pool task, so the pool cannot deadlock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from .cpus import available_cpus

T = TypeVar("T")
R = TypeVar("R")


class ComputePool:
    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="docfn-compute")
        self._lock = threading.Lock()
        self._running = 0
        self.peak_running = 0  # the most tasks seen running at once (tests check the bound)

    def _tracked(self, work: Callable[[], R]) -> R:
        with self._lock:
            self._running += 1
            self.peak_running = max(self.peak_running, self._running)
        try:
            return work()
        finally:
            with self._lock:
                self._running -= 1

    def submit(self, fn: Callable[..., R], *args: object) -> Future[R]:
        return self._executor.submit(self._tracked, lambda: fn(*args))

    def run(self, fn: Callable[..., R], *args: object) -> R:
        """``fn(*args)`` on a pool worker; the caller waits."""
        return self.submit(fn, *args).result()

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``[fn(item) for item in items]``, items spread over the workers, results in order."""
        futures = [self.submit(fn, item) for item in items]
        return [future.result() for future in futures]


_pools: dict[int, ComputePool] = {}
_lock = threading.Lock()


def shared_pool(threads: int = 0) -> ComputePool:
    """The process's pool of ``threads`` workers (0 = the CPU quota), created on first use."""
    size = threads or available_cpus()
    with _lock:
        pool = _pools.get(size)
        if pool is None:
            pool = _pools[size] = ComputePool(size)
    return pool
