"""The document service: the one entry point every adapter calls (HTTP, Lambda events, jobs, CLI).

It validates options, decodes the input within its limits, consults the cache, loads the task
lazily, runs the page loop (with progress), and stores the result. It knows nothing about HTTP,
Lambda, Knative or any cloud SDK: packs, tracing and the cache client are handed to it when wired
(``docfn.adapters.wiring``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from .. import __version__
from ..core import metrics
from ..core.cpus import available_cpus
from ..core.deadline import working_until
from ..core.documents import DecodeLimits, Document, PageImage, check_body_size, open_document
from ..core.errors import DeadlineExceeded, NotFound
from ..core.settings import ALL_TASKS, Settings
from ..core.text_input import is_text_input, read_text_input
from ..core.tracing import NoTracer, Tracer
from ..packs.refs import OWN_PACK, PackRef, pack_ref_for, setting_for
from ..tasks import instruction as instruction_use
from ..tasks.contract import Task, TaskOptions, TextTask, validate_options
from ..tasks.registry import implemented_tasks, options_model, task_class
from .admission import Admission
from .cache import MemoryCache, ResultCache, cache_key, input_key
from .hosted_task import HostedTask, LoadReport
from .outcome import Outcome
from .pack_sources import PackResolver

log = logging.getLogger("docfn.service")

# Phases a text task times itself; its upstream's are reported under the upstream's name.
_OWN_PHASES = frozenset({"decode", "cache_get", "cache_set", "inference"})
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
        bindings: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.bindings = dict(bindings or {})  # outside services tasks call (Task.bind)
        self.packs = packs or PackResolver(settings.model_store)
        self.cache: ResultCache = cache if cache is not None else MemoryCache(settings.memory_cache_entries)
        self.tracer: Tracer = tracer or NoTracer()
        self.tasks: dict[str, HostedTask] = {}
        self._upstreams: dict[str, HostedTask] = {}  # tasks run in-process for a text task only
        self._upstream_lock = threading.Lock()
        for name in settings.tasks:
            if name in implemented_tasks():
                self.tasks[name] = self._host(name)
        self.admission = Admission(
            settings.max_concurrency or available_cpus(), settings.max_queue, settings.retry_after_seconds
        )
        # Requests to the VLM wait in its batching queue, all of them at once (that is what it batches):
        # bounded by the queue's size, never by the page tasks' single slot.
        self.vlm_admission = Admission(
            settings.vlm_max_queue,
            0,
            settings.retry_after_seconds,
            refusal=f"the VLM's batching queue is full ({settings.vlm_max_queue} requests waiting or"
            " decoding, DOCFN_VLM_MAX_QUEUE); retry soon",
            gauge=metrics.VLM_QUEUED,
        )
        self.limits = DecodeLimits(settings.max_pixels, settings.max_pages, settings.pdf_dpi)
        self.version = __version__
        self._eager: dict[str, Any] = {"running": False, "done": False, "error": None, "retry_at": 0.0}

    def _host(self, name: str, own_role: str = OWN_PACK) -> HostedTask:
        """Task ``name`` with its packs; ``own_role``: the role whose setting names its own pack (a
        task run inside another's function reads it from its role's, e.g. parse's layout pack from
        DOCFN_LAYOUT_MODEL_URI in the summarize function, where DOCFN_MODEL_URI is not parse's)."""
        task = task_class(name).from_settings(self.settings)
        task.bind(self.bindings)
        refs = {role: self._pack_ref(name, role, own_role) for role in task.pack_roles}
        optional = {role: self._pack_ref(name, role, own_role) for role in task.optional_pack_roles}
        return HostedTask(task, refs, self.packs, optional)

    def _pack_uri(self, role: str) -> str | None:
        # Each role's pack is named by its own setting: DOCFN_MODEL_URI -> Settings.model_uri, …
        return getattr(self.settings, setting_for(role).removeprefix("DOCFN_").lower())

    def _pack_ref(self, name: str, role: str, own_role: str) -> PackRef:
        setting_role = own_role if role == OWN_PACK else role
        ref = pack_ref_for(name, role, self._pack_uri(setting_role))
        return dataclasses.replace(ref, setting=setting_for(setting_role))

    def _upstream(self, hosted: HostedTask) -> HostedTask:
        """The task a text task's documents go through first: the one served here, or its own copy
        (built once, loaded on the first document: text inputs never wait for its packs)."""
        assert isinstance(hosted.task, TextTask)
        name = hosted.task.upstream
        if name in self.tasks:
            return self.tasks[name]
        with self._upstream_lock:
            if name not in self._upstreams:
                self._upstreams[name] = self._host(name, own_role=hosted.task.upstream_own_role)
            return self._upstreams[name]

    def task(self, name: str) -> HostedTask:
        hosted = self.tasks.get(name)
        if hosted is None:
            served = ", ".join(self.tasks) or "none"
            raise NotFound(f"task {name!r} is not served here (this function serves: {served})")
        return hosted

    def loaded(self, name: str) -> tuple[Task, LoadReport]:
        """Task ``name`` loaded, for callers that use its runtime directly (the VLM's chat API) rather
        than a document run; the report says whether this call paid for the load."""
        hosted = self.task(name)
        with self.tracer.subsegment("model_load", pack=hosted.version_id):
            report = hosted.load()
        return hosted.task, report

    def admission_for(self, task: str) -> Admission:
        """Where a request for ``task`` holds its place: the VLM's batching queue for the tasks whose
        inference is that queue (:attr:`Task.vlm_queued`), the page tasks' queue for the others."""
        hosted = self.tasks.get(task)
        return self.vlm_admission if hosted is not None and hosted.task.vlm_queued else self.admission

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
        """Load every task; ``eager``: ahead of requests (the first request reports the cold start).
        Every task is tried even when one fails (a function without one task's pack still serves,
        and reports, the others); the first failure is raised afterwards."""
        failures: list[Exception] = []
        for hosted in self.tasks.values():
            try:
                hosted.load(eager=eager)
                if eager and isinstance(hosted.task, TextTask):
                    # Its documents' first request should not wait for the upstream's packs either.
                    self._upstream(hosted).load(eager=True)
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]

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
                # The reason in the line itself (a refused pack names the file and the check).
                log.exception("eager model load failed: %s", exc, extra={"fields": {"error": str(exc)}})
            finally:
                self._eager["done"] = True
                self._eager["running"] = False

        threading.Thread(target=run, name="docfn-eager-load", daemon=True).start()

    def wait_eager_load(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a running eager load; True once none is running (SnapStart
        snapshots after this, so the packs are in the snapshot)."""
        deadline = time.monotonic() + timeout
        while self._eager["running"] and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self._eager["running"]

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
            # A pod whose pack is missing stays unready: a new revision without its pack never
            # takes traffic from the one serving, and the probe's body names what to publish.
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
        instruction: str | None = None,
    ) -> Outcome:
        """Run ``task_name`` on ``data``. Raises :class:`DocfnError` subclasses for bad requests.

        ``max_bytes`` overrides the synchronous body limit (uploaded jobs have their own, larger one).
        ``deadline`` (a ``time.monotonic()`` instant) stops the work between pages once passed, so a
        request its caller gave up on frees its place within one page (:class:`DeadlineExceeded`).
        ``instruction``: the reference client's free text, the VLM's prompt where a VLM answers the
        request (``Task.apply_instruction``); the outcome says whether it was applied, and why not.
        """
        with self.tracer.request(f"docfn-{task_name}", task=task_name):
            return self._run(
                task_name, data, content_type, raw_options or {}, on_page, max_bytes, deadline, instruction
            )

    def cached(self, task_name: str, input_sha256: str, raw_options: Mapping[str, Any]) -> Outcome | None:
        """The cached result of ``task_name`` on the input whose sha256 is given, without its bytes:
        found when that input was read before (its page count and size are cached beside its results)
        and a result for these options is still cached; None otherwise (the caller sends the input).
        Options are validated as :meth:`run` validates them (422)."""
        hosted = self.task(task_name)
        options = hosted.task.resolve_options(validate_options(hosted.task.Options, raw_options, task_name))
        if isinstance(hosted.task, TextTask):
            return None  # a text task's key depends on whether the input is text: read it
        facts = self.cache.get(input_key(input_sha256))
        if facts is None:
            return None
        count = int(facts["pages"])
        pages = options.page_list()
        pages = list(range(count)) if pages is None else pages
        if any(page >= count for page in pages) or len(pages) > self.limits.max_pages:
            return None  # the run with the input says what is wrong
        optional = hosted.task.optional_roles_for(options)
        key = cache_key(
            input_sha256, task_name, hosted.version_for(optional), {**options.cache_fields(), "pages": pages}
        )
        result = self.cache.get(key)
        metrics.count_cache_lookup(task_name, result is not None)
        if result is None:
            return None
        return Outcome(task_name, result, input_sha256, key, True, False, len(pages), int(facts["bytes"]))

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
        instruction: str | None = None,
        hosted: HostedTask | None = None,
    ) -> Outcome:
        """``hosted``: a task not served here but run for another (parse for summarize)."""
        hosted = hosted or self.task(task_name)
        options = hosted.task.resolve_options(validate_options(hosted.task.Options, raw_options, task_name))
        # Before the cache key is made: an applied instruction is the prompt option, part of the key.
        options, note = instruction_use.apply(hosted.task, options, instruction)
        if isinstance(hosted.task, TextTask):
            outcome = self._run_text(hosted, data, content_type, options, on_page, max_bytes, deadline)
        else:
            outcome = self._run_pages(hosted, data, content_type, options, on_page, max_bytes, deadline)
        outcome.instruction = note.to_dict() if note is not None else None
        return outcome

    def _run_pages(
        self,
        hosted: HostedTask,
        data: bytes,
        content_type: str | None,
        options: TaskOptions,
        on_page: ProgressHook | None,
        max_bytes: int | None,
        deadline: float | None,
    ) -> Outcome:
        """A task that reads pages: the document decoded, the cache asked, the page loop run."""
        task_name = hosted.name
        optional = hosted.task.optional_roles_for(options)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        limit = max_bytes if max_bytes is not None else self.settings.max_body_bytes
        document = open_document(data, content_type, self.limits, limit)
        try:
            pages = document.select(options.page_list())
            input_sha = hashlib.sha256(data).hexdigest()
            key = cache_key(
                input_sha, task_name, hosted.version_for(optional), {**options.cache_fields(), "pages": pages}
            )
            timings["decode"] = time.perf_counter() - started

            lookup = time.perf_counter()
            with self.tracer.subsegment("cache_get", cache=self.cache.kind):
                cached = self.cache.get(key)
            timings["cache_get"] = time.perf_counter() - lookup
            metrics.count_cache_lookup(task_name, cached is not None)
            if cached is not None:
                return Outcome(task_name, cached, input_sha, key, True, False, len(pages), len(data), timings)

            text_layer = hosted.task.needs_text_layer(options)

            def first_page() -> PageImage | None:
                # Decoded while waiting for the slot (Admission.slot_after), not on its time.
                return document.render(pages[0], text_layer=text_layer) if pages else None

            # The single inference slot, except around the VLM's queue (it serialises its own passes).
            slot: AbstractContextManager[PageImage | None] = (
                nullcontext(first_page()) if hosted.task.vlm_queued else self.admission.slot_after(first_page)
            )
            with slot as staged:
                with self.tracer.subsegment("model_load", pack=hosted.version_id):
                    report = hosted.load()
                    extra = hosted.load_optional(optional)
                hosted.task.check_options(options)
                timings.update(report.phases)
                for phase, seconds in extra.phases.items():
                    timings[phase] = timings.get(phase, 0.0) + seconds
                infer = time.perf_counter()
                with self.tracer.subsegment("inference", pages=str(len(pages))):
                    result = self._predict(hosted, document, pages, options, on_page, deadline, staged)
                timings["first_inference" if report.performed or extra.performed else "inference"] = (
                    time.perf_counter() - infer
                )
            result = {"model": hosted.version_for(optional), **result}

            store = time.perf_counter()
            with self.tracer.subsegment("cache_set", cache=self.cache.kind):
                self.cache.set(key, result, self.settings.result_ttl_seconds)
                facts = {"pages": document.page_count, "bytes": len(data)}
                self.cache.set(input_key(input_sha), facts, self.settings.result_ttl_seconds)
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
        first: PageImage | None = None,
    ) -> dict[str, Any]:
        """The page loop: one page decoded at a time (bounded memory), progress after each;
        ``first``: the first page, already decoded."""
        results = []
        text_layer = hosted.task.needs_text_layer(options)
        for done, index in enumerate(pages, start=1):
            if deadline is not None and time.monotonic() >= deadline:
                raise self.deadline_exceeded()  # nobody waits for the rest: stop and free the slot
            page = first if done == 1 and first is not None else document.render(index, text_layer=text_layer)
            first = None
            with working_until(deadline):  # the VLM's block reads stop decoding at it too
                results.append(hosted.task.predict_page(page, options))
            del page
            if on_page is not None:
                on_page(done, len(pages))
        return hosted.task.combine(results, options)

    def _run_text(
        self,
        hosted: HostedTask,
        data: bytes,
        content_type: str | None,
        options: TaskOptions,
        on_step: ProgressHook | None,
        max_bytes: int | None,
        deadline: float | None,
    ) -> Outcome:
        """A text task: a text input as it is; a document through the upstream task first (its own
        run: parse's cache entry is read, or written for the next parse request of the same file)."""
        task = hosted.task
        assert isinstance(task, TextTask)
        name = task.name
        timings: dict[str, float] = {}
        started = time.perf_counter()
        check_body_size(data, max_bytes if max_bytes is not None else self.settings.max_body_bytes)
        input_sha = hashlib.sha256(data).hexdigest()
        identity = {**options.cache_fields(), **task.cache_identity(options)}
        optional = task.optional_roles_for(options)
        upstream: HostedTask | None = None
        pages: list[int] = []
        if is_text_input(data, content_type):
            given: Any = read_text_input(data, content_type)
            identity["input"] = "text"
        else:
            upstream = self._upstream(hosted)
            document = open_document(data, content_type, self.limits, len(data))
            try:
                pages = document.select(options.page_list())
            finally:
                document.close()
            identity.update(input="document", pages=pages, upstream=upstream.version_id)
        key = cache_key(input_sha, name, hosted.version_for(optional), identity)
        timings["decode"] = time.perf_counter() - started
        with self.tracer.subsegment("cache_get", cache=self.cache.kind):
            cached = self.cache.get(key)
        metrics.count_cache_lookup(name, cached is not None)
        if cached is not None:
            return Outcome(name, cached, input_sha, key, True, False, len(pages), len(data), timings)

        cold = False
        if upstream is not None:
            first = time.perf_counter()
            raw = {"pages": options.pages} if options.pages else {}
            parsed = self._run(
                upstream.name, data, content_type, raw, on_step, max_bytes, deadline, hosted=upstream
            )
            given, cold = parsed.result, parsed.cold
            # The upstream run's phases (its cold start's included), its own lookups named as its.
            for phase, seconds in parsed.timings.items():
                timings[f"{upstream.name}_{phase}" if phase in _OWN_PHASES else phase] = seconds
            timings[f"{upstream.name}_cached" if parsed.cached else upstream.name] = (
                time.perf_counter() - first
            )
        with self.admission.slot():
            report = hosted.load()
            extra = hosted.load_optional(optional)
            task.check_options(options)
            timings.update(report.phases)
            for phase, seconds in extra.phases.items():
                timings[phase] = timings.get(phase, 0.0) + seconds
            infer = time.perf_counter()
            with self.tracer.subsegment("inference", task=name):
                result = task.predict_text(given, options, progress=on_step, deadline=deadline)
            timings["inference"] = time.perf_counter() - infer
        result = {"model": hosted.version_for(optional), **result}
        if task.cacheable(result):
            with self.tracer.subsegment("cache_set", cache=self.cache.kind):
                self.cache.set(key, result, self.settings.result_ttl_seconds)
        cold = cold or report.performed or extra.performed
        return Outcome(name, result, input_sha, key, False, cold, len(pages), len(data), timings)
