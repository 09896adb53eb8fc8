"""A bounded per-instance queue: at most ``concurrency`` inferences run, ``queue`` more wait.

``admit()`` / ``submit()`` are taken by an adapter before it dispatches work (so waiting requests
are counted) and refuse with 429 past capacity, instead of piling up until the instance runs out of
memory; ``slot()`` is taken by the service around model load + inference only (cache hits skip it).
``slot_after(prepare)`` is the same slot with ``prepare()`` (decoding the first page) run while
waiting for it: the page is decoded while another request computes instead of on the slot's own
time, when the cores would idle for it. One caller at a time prepares ahead, so at most one decoded
page waits (memory stays bounded whatever the queue's length).

A place is held until the *work* has stopped, not until the caller stops waiting: a request that
hits its deadline answers 504 at once, but its worker thread keeps its place until it returns, so
capacity always counts the threads really running or queued.

Two instances serve a function: the page tasks' (``DOCFN_MAX_CONCURRENCY`` + ``DOCFN_MAX_QUEUE``, one
inference slot) and the VLM's batching queue (``DOCFN_VLM_MAX_QUEUE``, see ``DocService``): requests
to the VLM are meant to wait together, since the engine batches the ones waiting, so they are bounded
by that queue's size rather than refused behind the page tasks' single slot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from ..core import metrics
from ..core.errors import Overloaded

if TYPE_CHECKING:
    from prometheus_client import Gauge

T = TypeVar("T")


class Admission:
    def __init__(
        self,
        concurrency: int,
        queue: int,
        retry_after: int,
        *,
        refusal: str | None = None,
        gauge: Gauge | None = None,
    ) -> None:
        """``refusal``: the 429's message (default: the page tasks' capacity); ``gauge``: the metric
        counting the places held (default ``docfn_in_flight``)."""
        self.concurrency = max(1, concurrency)
        self.capacity = self.concurrency + max(0, queue)
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._staging = threading.Lock()
        self._admitted = 0
        self._lock = threading.Lock()
        self.retry_after = retry_after
        self._refusal = refusal or (
            f"this instance is at capacity ({self.capacity} requests running or queued); retry soon"
        )
        self._gauge = gauge if gauge is not None else metrics.IN_FLIGHT

    @property
    def admitted(self) -> int:
        """Requests holding a place now (running or queued)."""
        return self._admitted

    def _enter(self) -> None:
        with self._lock:
            if self._admitted >= self.capacity:
                metrics.SHED.inc()
                raise Overloaded(self._refusal, retry_after=self.retry_after)
            self._admitted += 1
            self._gauge.set(self._admitted)

    def _leave(self) -> None:
        with self._lock:
            self._admitted -= 1
            self._gauge.set(self._admitted)

    @contextmanager
    def admit(self) -> Iterator[None]:
        """A place for work the caller runs (and waits for) itself."""
        self._enter()
        try:
            yield
        finally:
            self._leave()

    def submit(self, executor: Executor, work: Callable[..., T], *args: Any) -> Future[T]:
        """Admit ``work`` and start it on ``executor``; its place is given back when it has stopped
        (returned, raised or been cancelled before it started), whoever is still waiting for it."""
        self._enter()
        try:
            future = executor.submit(work, *args)
        except BaseException:
            self._leave()
            raise
        future.add_done_callback(lambda _: self._leave())
        return future

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._slots:
            yield

    @contextmanager
    def slot_after(self, prepare: Callable[[], T]) -> Iterator[T]:
        """The inference slot, ``prepare()`` run first while waiting for it (its value is yielded).
        Callers waiting here prepare one at a time: the next waits until this one holds the slot. A
        ``prepare()`` that raises gives up its turn and takes no slot."""
        with self._staging:
            value = prepare()
            self._slots.acquire()
        try:
            yield value
        finally:
            self._slots.release()
