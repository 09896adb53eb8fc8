"""A bounded per-instance queue: at most ``concurrency`` inferences run, ``queue`` more wait.

``admit()`` is taken by an adapter before it dispatches work (so waiting requests are counted) and
refuses with 429 past capacity, instead of piling up until the instance runs out of memory;
``slot()`` is taken by the service around model load + inference only (cache hits skip it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..core import metrics
from ..core.errors import Overloaded


class Admission:
    def __init__(self, concurrency: int, queue: int, retry_after: int) -> None:
        self.concurrency = max(1, concurrency)
        self.capacity = self.concurrency + max(0, queue)
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._admitted = 0
        self._lock = threading.Lock()
        self.retry_after = retry_after

    @contextmanager
    def admit(self) -> Iterator[None]:
        with self._lock:
            if self._admitted >= self.capacity:
                metrics.SHED.inc()
                raise Overloaded(
                    f"this instance is at capacity ({self.capacity} requests running or queued); retry soon",
                    retry_after=self.retry_after,
                )
            self._admitted += 1
            metrics.IN_FLIGHT.set(self._admitted)
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1
                metrics.IN_FLIGHT.set(self._admitted)

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._slots:
            yield
