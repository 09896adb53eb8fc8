"""The AWS Lambda entry point (the image's CMD): one handler for every event source a function gets.

After Mangum's adapter: the registry (``docfn.adapters.events.registry``) names the source that
claims the event, and that source answers it: function URL / API Gateway requests through Mangum to
the FastAPI app; S3 notifications, EventBridge events and CloudEvents by running the upload jobs;
SQS batches with partial-batch failure reporting.

Init stays short: importing this module imports code, and with ``DOCFN_EAGER_LOAD`` (what Terraform
sets) also starts a background thread that builds the service and loads the model packs, without
waiting for it. The download then overlaps the first invocation's own work (building the HTTP app
on the first HTTP event) instead of following it, and that invocation waits only for what is left
of the load (its ``load_wait``). Init never fails on a wiring or load error: the first invocation
tries again and answers with the error (503 for an unreachable S3). Without ``DOCFN_EAGER_LOAD``
everything is built on the first invocation and packs load on first use. Whether an invocation was
the container's first (cold) is in the response header ``X-Docfn-Lambda-Cold``, the event
responses' ``cold_start``, and the invocation log. Before an invocation returns, the tracer's
buffered spans are flushed (OpenTelemetry batches them).
"""

from __future__ import annotations

import time

_IMPORT_START = time.perf_counter()

# First, before the imports below: with DOCFN_PACK_PREFETCH=1 (off by default) the pack fetch in a
# process of its own beside them (docfn.cloud.prefetch reads only the environment).
from ...cloud import prefetch  # noqa: E402

prefetch.start()

import logging  # noqa: E402
import threading  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from typing import Any  # noqa: E402

from ...core import logs  # noqa: E402
from ...core.malloc_policy import configure_malloc  # noqa: E402
from ...core.settings import get_settings  # noqa: E402
from ...service.request_log import request_fields  # noqa: E402
from ...service.service import DocService  # noqa: E402
from ...service.upload_jobs import UploadProcessor  # noqa: E402
from ..events.contract import Invocation  # noqa: E402
from ..events.registry import object_refs, source_for  # noqa: E402
from ..wiring import build_service, upload_processor  # noqa: E402
from . import snapshot  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _IMPORT_START
log = logging.getLogger("docfn.lambda")
# How long an invocation waits at most for its batched spans to reach the collector (OpenTelemetry;
# X-Ray sends each segment as it ends). Lambda freezes the environment once the handler returns, so
# spans still in a batch would leave minutes later or never; a collector that is down costs at most
# this, once: the fail-safe tracer then steps aside.
TRACE_FLUSH_SECONDS = 2.0


class Runtime:
    """What lives for the container's lifetime: the service, its jobs, and (lazily) the HTTP app."""

    def __init__(self) -> None:
        settings = get_settings()
        logs.configure(settings.log_level, emf=settings.metrics_emf)
        self.service: DocService = build_service(settings)
        self.jobs: UploadProcessor = upload_processor(self.service)
        self.invocations = 0
        self._mangum: Any = None
        self._lock = threading.Lock()

    def http(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        if self._mangum is None:
            with self._lock:
                if self._mangum is None:
                    from mangum import Mangum

                    from ..http.app import create_app

                    app = create_app(self.service.settings, service=self.service, jobs=self.jobs)
                    # lifespan="off": Mangum would run the app's startup/shutdown on every invocation.
                    self._mangum = Mangum(app, lifespan="off")
        return self._mangum(event, context)


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        with _runtime_lock:
            if _runtime is None:
                _runtime = Runtime()
    return _runtime


def _prepare_in_background() -> None:
    try:
        runtime().service.start_eager_load()
    except Exception:  # the first invocation builds what is missing again and reports the error
        log.exception("preparing the function during init failed; the first invocation retries")


_prepare_thread: threading.Thread | None = None


def _prepare_during_init() -> None:
    """``DOCFN_EAGER_LOAD``: wire the service (Redis, its secret) and start the pack load in a thread,
    so init itself only imports; the first invocation's ``runtime()`` joins what is under way."""
    global _prepare_thread
    if get_settings().eager_load:
        _prepare_thread = threading.Thread(target=_prepare_in_background, name="docfn-prepare", daemon=True)
        _prepare_thread.start()


def before_snapshot() -> None:
    """SnapStart, end of init (snapshot.py): the service wired and its packs loaded, nothing open."""
    if _prepare_thread is not None:
        _prepare_thread.join()
    snapshot.before_snapshot(runtime().service)


def after_restore() -> None:
    """SnapStart, in each restored container before its first invocation (snapshot.py)."""
    snapshot.after_restore(_runtime.service if _runtime is not None else None)


configure_malloc()  # before the init thread below, and the runtime's own
_prepare_during_init()
snapshot.register(before_snapshot, after_restore)
INIT_SECONDS = time.perf_counter() - _IMPORT_START


def handler(event: Any, context: Any) -> Any:
    """The image's CMD: ``docfn.adapters.aws_lambda.handler.handler``."""
    started = time.perf_counter()
    rt = runtime()
    rt.invocations += 1
    cold = rt.invocations == 1
    source = source_for(event)
    request_id = getattr(context, "aws_request_id", None)
    error: str | None = None
    status: int | None = None
    failed_messages: int | None = None
    try:
        if source is None:
            raise ValueError("unsupported event: not a function URL request, S3, SQS or EventBridge S3 event")
        invocation = Invocation(request_id, cold, rt.jobs, object_refs, context, rt.http)
        result = source.handle(event, invocation)
        if isinstance(result, dict):
            status = result.get("statusCode")
            if "batchItemFailures" in result:
                failed_messages = len(result["batchItemFailures"])
        return result
    except Exception as exc:
        error = type(exc).__name__
        raise
    finally:
        fields = request_fields(
            request_id=request_id,
            task=",".join(rt.service.tasks) or None,
            status=status,
            started=started,
            error=error,
            source=source.name if source else "unknown",
            cold_start=cold,
            init_import_ms=round(IMPORT_SECONDS * 1000, 1) if cold else None,
            init_ms=round(INIT_SECONDS * 1000, 1) if cold else None,
            failed_messages=failed_messages,
        )
        log.info("invocation", extra={"fields": fields})
        rt.service.tracer.flush(TRACE_FLUSH_SECONDS)
