"""The document service: the one entry point every adapter calls (HTTP, Lambda events, jobs, CLI).

It validates options, decodes the input within its limits, consults the cache, loads the task
lazily, runs the page loop (with progress), and stores the result. It knows nothing about HTTP,
Lambda, Knative or any cloud SDK: packs, tracing and the cache client are handed to it when wired
(``docfn.adapters.wiring``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .. import __version__
from ..core import metrics
from ..core.documents import DecodeLimits, Document, open_document
from ..core.errors import DeadlineExceeded, NotFound
from ..core.onnx_sessions import available_cpus
from ..core.settings import ALL_TASKS, Settings
from ..core.tracing import NoTracer, Tracer
from ..packs.refs import pack_ref_for, setting_for
from ..tasks.contract import TaskOptions, validate_options
from ..tasks.registry import implemented_tasks, options_model, task_class
from .admission import Admission
from .cache import MemoryCache, ResultCache, cache_key
from .hosted_task import HostedTask
from .outcome import Outcome
from .pack_sources import PackResolver

log = logging.getLogger("docfn.service")

# Progress of a multi-page request: (pages done, pages selected).
ProgressHook = Callable[[int, int], None]


class DocService:
    def __init__(
        self,
        settings: Settings,
        *,
        packs: PackResolver | None = None,
        cache: ResultCache | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.settings = settings
        self.packs = packs or PackResolver(settings.model_store)
        self.cache: ResultCache = cache if cache is not None else MemoryCache(settings.memory_cache_entries)
        self.tracer: Tracer = tracer or NoTracer()
        self.tasks: dict[str, HostedTask] = {}
        for name in settings.tasks:
            if name in implemented_tasks():
                self.tasks[name] = self._host(name)
        self.admission = Admission(
            settings.max_concurrency or available_cpus(), settings.max_queue, settings.retry_after_seconds
        )
        self.limits = DecodeLimits(settings.max_pixels, settings.max_pages, settings.pdf_dpi)
        self.version = __version__
        self._eager: dict[str, Any] = {"running": False, "done": False, "error": None, "retry_at": 0.0}

    def _host(self, name: str) -> HostedTask:
        task = task_class(name)(self.settings.onnx_threads)
        # Each role's pack is named by its own setting: DOCFN_MODEL_URI -> Settings.model_uri, …
        refs = {
            role: pack_ref_for(
                name, role, getattr(self.settings, setting_for(role).removeprefix("DOCFN_").lower())
            )
            for role in task.pack_roles
        }
        return HostedTask(task, refs, self.packs)

    def task(self, name: str) -> HostedTask:
        hosted = self.tasks.get(name)
        if hosted is None:
            served = ", ".join(self.tasks) or "none"
            raise NotFound(f"task {name!r} is not served here (this function serves: {served})")
        return hosted

    def validate_options(self, task: str, raw: Mapping[str, Any]) -> TaskOptions:
        """A task's options, validated the same way on every entry point, served here or not."""
        if task not in ALL_TASKS:
            raise NotFound(f"unknown task {task!r}; known: {list(ALL_TASKS)}")
        if task not in implemented_tasks():
            raise NotFound(f"task {task!r} is not implemented yet; implemented: {implemented_tasks()}")
        return validate_options(options_model(task), raw, task)

    # -- lifecycle and readiness -----------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return all(hosted.ready for hosted in self.tasks.values())

    def load_all(self, *, eager: bool = False) -> None:
        """Load every task; ``eager``: ahead of requests (the first request reports the cold start)."""
        for hosted in self.tasks.values():
            hosted.load(eager=eager)

    def start_eager_load(self) -> None:
        """Load every task in the background (``DOCFN_EAGER_LOAD``); readiness waits for it. A failed
        load is tried again by later readiness probes (packs published after the pod started)."""
        if self._eager["running"] or (self._eager["done"] and not self._eager["error"]):
            return  # already loading, or loaded
        self._eager["running"] = True

        def run() -> None:
            try:
                self.load_all(eager=True)
                self._eager["error"] = None
            except Exception as exc:  # readiness reports it; liveness stays up so the pod can retry
                self._eager["error"] = str(exc)
                self._eager["retry_at"] = time.monotonic() + self.settings.retry_after_seconds
                log.exception("eager model load failed")
            finally:
                self._eager["done"] = True
                self._eager["running"] = False

        threading.Thread(target=run, name="docfn-eager-load", daemon=True).start()

    def readiness(self) -> dict[str, Any]:
        """What ``/readyz`` answers: ``ready`` and, per task, loaded / model / error."""
        tasks = {
            name: {
                "loaded": hosted.ready,
                "model": hosted.version_id,
                "error": str(hosted.load_error or "") or None,
            }
            for name, hosted in self.tasks.items()
        }
        if self.settings.eager_load:
            # Knative's activator holds requests until this says ready, so say it only once loaded.
            ready = bool(self._eager["done"]) and self.ready
            if not ready and self._eager["error"] and time.monotonic() >= self._eager["retry_at"]:
                self.start_eager_load()
        else:
            ready = all(hosted.in_rotation for hosted in self.tasks.values())
        body: dict[str, Any] = {"ready": ready, "tasks": tasks, "eager_load": self.settings.eager_load}
        if not ready and self._eager["error"]:
            body["error"] = self._eager["error"]
        return body

    # -- running a task --------------------------------------------------------------------------

    def run(
        self,
        task_name: str,
        data: bytes,
        content_type: str | None,
        raw_options: Mapping[str, Any] | None = None,
        *,
        on_page: ProgressHook | None = None,
        max_bytes: int | None = None,
        deadline: float | None = None,
    ) -> Outcome:
        """Run ``task_name`` on ``data``. Raises :class:`DocfnError` subclasses for bad requests.

        ``max_bytes`` overrides the synchronous body limit (uploaded jobs have their own, larger one).
        ``deadline`` (a ``time.monotonic()`` instant) stops the work between pages once passed, so a
        request its caller gave up on frees its place within one page (:class:`DeadlineExceeded`).
        """
        with self.tracer.request(f"docfn-{task_name}", task=task_name):
            return self._run(task_name, data, content_type, raw_options or {}, on_page, max_bytes, deadline)

    def deadline_exceeded(self) -> DeadlineExceeded:
        """The error for a synchronous request past ``DOCFN_INFERENCE_TIMEOUT_SECONDS``."""
        return DeadlineExceeded(
            f"inference did not finish within {self.settings.inference_timeout_seconds:g} s;"
            " send fewer pages or use an asynchronous upload (POST /v1/uploads)"
        )

    def _run(
        self,
        task_name: str,
        data: bytes,
        content_type: str | None,
        raw_options: Mapping[str, Any],
        on_page: ProgressHook | None,
        max_bytes: int | None,
        deadline: float | None,
    ) -> Outcome:
        hosted = self.task(task_name)
        options = validate_options(hosted.task.Options, raw_options, task_name)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        limit = max_bytes if max_bytes is not None else self.settings.max_body_bytes
        document = open_document(data, content_type, self.limits, limit)
        try:
            pages = document.select(options.page_list())
            input_sha = hashlib.sha256(data).hexdigest()
            key = cache_key(
                input_sha, task_name, hosted.version_id, {**options.cache_fields(), "pages": pages}
            )
            timings["decode"] = time.perf_counter() - started

            lookup = time.perf_counter()
            with self.tracer.subsegment("cache_get", cache=self.cache.kind):
                cached = self.cache.get(key)
            timings["cache_get"] = time.perf_counter() - lookup
            metrics.CACHE_LOOKUPS.labels(task_name, "hit" if cached is not None else "miss").inc()
            if cached is not None:
                return Outcome(task_name, cached, input_sha, key, True, False, len(pages), len(data), timings)

            with self.admission.slot():
                with self.tracer.subsegment("model_load", pack=hosted.version_id):
                    report = hosted.load()
                hosted.task.check_options(options)
                timings.update(report.phases)
                infer = time.perf_counter()
                with self.tracer.subsegment("inference", pages=str(len(pages))):
                    result = self._predict(hosted, document, pages, options, on_page, deadline)
                timings["first_inference" if report.performed else "inference"] = time.perf_counter() - infer
            result = {"model": hosted.version_id, **result}

            store = time.perf_counter()
            with self.tracer.subsegment("cache_set", cache=self.cache.kind):
                self.cache.set(key, result, self.settings.result_ttl_seconds)
            timings["cache_set"] = time.perf_counter() - store
            return Outcome(
                task_name, result, input_sha, key, False, report.performed, len(pages), len(data), timings
            )
        finally:
            document.close()

    def _predict(
        self,
        hosted: HostedTask,
        document: Document,
        pages: list[int],
        options: TaskOptions,
        on_page: ProgressHook | None,
        deadline: float | None,
    ) -> dict[str, Any]:
        """The page loop: one page decoded at a time (bounded memory), progress after each."""
        results = []
        text_layer = hosted.task.needs_text_layer(options)
        for done, index in enumerate(pages, start=1):
            if deadline is not None and time.monotonic() >= deadline:
                raise self.deadline_exceeded()  # nobody waits for the rest: stop and free the slot
            page = document.render(index, text_layer=text_layer)
            results.append(hosted.task.predict_page(page, options))
            del page
            if on_page is not None:
                on_page(done, len(pages))
        return hosted.task.combine(results, options)
