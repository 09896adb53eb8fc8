"""The document service: one entry point every adapter calls (HTTP, Lambda events, CLI).

It validates, hashes, consults the cache, loads the task lazily, runs it and stores the result.
It knows nothing about HTTP, Lambda or Knative.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..tasks.base import Task
from ..tasks.registry import implemented_tasks, task_class
from . import metrics
from .cache import ResultCache, build_cache, cache_key
from .errors import ConfigurationError, DocfnError, NotFound, Overloaded, Unavailable
from .inputs import DecodeLimits, open_document, parse_page_ranges
from .settings import Settings
from .tracing import Tracer


@dataclass
class Outcome:
    """A task result plus what adapters report about how it was produced."""

    task: str
    result: dict[str, Any]
    input_sha256: str
    cache_key: str
    cached: bool
    cold: bool
    pages: int
    bytes: int
    timings: dict[str, float] = field(default_factory=dict)

    def log_fields(self) -> dict[str, Any]:
        """What the one structured log line per request says about this outcome."""
        return {
            "input_sha256": self.input_sha256,
            "bytes": self.bytes,
            "pages": self.pages,
            "cache_hit": self.cached,
            "cold": self.cold,
            "phases_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
        }

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        return {
            "task": self.task,
            "request_id": request_id,
            "input_sha256": self.input_sha256,
            "cached": self.cached,
            "cold": self.cold,
            "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
            "result": self.result,
        }


class Admission:
    """A bounded per-instance queue: at most ``concurrency`` inferences run, ``queue`` more wait.

    ``admit()`` is taken by an adapter before it dispatches work (so waiting requests are counted)
    and refuses with 429 past capacity, instead of piling up until the instance runs out of memory;
    ``slot()`` is taken by the service around model load + inference only (cache hits skip it).
    """

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


class DocService:
    def __init__(self, settings: Settings, cache: ResultCache | None = None) -> None:
        self.settings = settings
        self.cache = cache if cache is not None else self._build_cache(settings)
        self.tasks: dict[str, Task] = {}
        for name in settings.tasks:
            if name in implemented_tasks():
                self.tasks[name] = task_class(name)(settings)
        self.admission = Admission(settings.max_concurrency, settings.max_queue, settings.retry_after_seconds)
        self.limits = DecodeLimits(settings.max_pixels, settings.max_pages, settings.pdf_dpi)
        self.version = __version__
        self.tracer = Tracer(settings.tracing)

    @staticmethod
    def _build_cache(settings: Settings) -> ResultCache:
        password = None
        if settings.redis_url and settings.redis_auth_secret_arn:
            from ..adapters.aws_secrets import read_secret

            password = read_secret(settings.redis_auth_secret_arn)
        return build_cache(
            settings.redis_url,
            memory_entries=settings.memory_cache_entries,
            password=password,
            timeout_seconds=settings.redis_timeout_seconds,
        )

    def task(self, name: str) -> Task:
        task = self.tasks.get(name)
        if task is None:
            served = ", ".join(self.tasks) or "none"
            raise NotFound(f"task {name!r} is not served here (this function serves: {served})")
        return task

    @property
    def ready(self) -> bool:
        return all(task.ready for task in self.tasks.values())

    def load_all(self) -> None:
        for task in self.tasks.values():
            self.load(task)

    def load(self, task: Task) -> dict[str, float]:
        start = time.perf_counter()
        try:
            report = task.load()
        except Exception as exc:
            metrics.MODEL_LOAD_FAILURES.labels(task.name).inc()
            error = self._load_failure(task, exc)
            # Readiness reads the translated error: a 503-type failure keeps the instance in rotation.
            task.load_error = error
            if error is exc:
                raise
            raise error from exc
        if report.performed:
            metrics.COLD_STARTS.labels(task.name).inc()
            metrics.MODEL_LOAD_SECONDS.labels(task.name).observe(time.perf_counter() - start)
        return report.phases if report.performed else {}

    @staticmethod
    def _load_failure(task: Task, exc: Exception) -> DocfnError:
        """Every load failure as a docfn error: I/O is transient (503, retry), the rest is config."""
        if isinstance(exc, DocfnError):
            return exc
        if isinstance(exc, OSError):
            return Unavailable(f"model pack for {task.name} could not be loaded: {exc}", retry_after=5)
        return ConfigurationError(f"model pack for {task.name} could not be loaded: {exc}")

    def run(
        self,
        task_name: str,
        data: bytes,
        content_type: str | None,
        raw_options: Mapping[str, str] | None = None,
        *,
        on_page: Callable[[int, int], None] | None = None,
        max_bytes: int | None = None,
    ) -> Outcome:
        """Run ``task_name`` on ``data``. Raises :class:`DocfnError` subclasses for bad requests.

        ``max_bytes`` overrides the synchronous body limit (uploaded jobs have their own, larger one).
        """
        with self.tracer.request(f"docfn-{task_name}", task=task_name):
            return self._run(task_name, data, content_type, raw_options, on_page=on_page, max_bytes=max_bytes)

    def _run(
        self,
        task_name: str,
        data: bytes,
        content_type: str | None,
        raw_options: Mapping[str, str] | None,
        *,
        on_page: Callable[[int, int], None] | None,
        max_bytes: int | None,
    ) -> Outcome:
        raw_options = dict(raw_options or {})
        task = self.task(task_name)
        timings: dict[str, float] = {}
        options = task.parse_options(raw_options)
        pages_wanted = parse_page_ranges(raw_options.get("pages"))
        started = time.perf_counter()
        limit = max_bytes if max_bytes is not None else self.settings.max_body_bytes
        document = open_document(data, content_type, self.limits, limit, on_page)
        try:
            pages = document.select(pages_wanted)
            input_sha = hashlib.sha256(data).hexdigest()
            key = cache_key(input_sha, task.name, task.version_id, {**options, "pages": pages})
            timings["decode"] = time.perf_counter() - started

            lookup = time.perf_counter()
            with self.tracer.subsegment("cache_get", cache=self.cache.kind):
                cached = self.cache.get(key)
            timings["cache_get"] = time.perf_counter() - lookup
            metrics.CACHE_LOOKUPS.labels(task.name, "hit" if cached is not None else "miss").inc()
            if cached is not None:
                return Outcome(task.name, cached, input_sha, key, True, False, len(pages), len(data), timings)

            with self.admission.slot():
                with self.tracer.subsegment("model_load", pack=task.version_id):
                    load_phases = self.load(task)
                timings.update(load_phases)
                infer = time.perf_counter()
                with self.tracer.subsegment("inference", pages=str(len(pages))):
                    result = task.predict(document, pages, options)
                phase = "first_inference" if load_phases else "inference"
                timings[phase] = time.perf_counter() - infer
            result = {"model": task.version_id, **result}

            store = time.perf_counter()
            with self.tracer.subsegment("cache_set", cache=self.cache.kind):
                self.cache.set(key, result, self.settings.result_ttl_seconds)
            timings["cache_set"] = time.perf_counter() - store
            return Outcome(
                task.name, result, input_sha, key, False, bool(load_phases), len(pages), len(data), timings
            )
        finally:
            document.close()
