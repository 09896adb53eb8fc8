"""The FastAPI app: the same ASGI app runs under uvicorn (Knative, local) and Mangum (Lambda)."""

from __future__ import annotations

import time

_IMPORT_START = time.perf_counter()

import asyncio  # noqa: E402
import logging  # noqa: E402
import threading  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from typing import Any  # noqa: E402

from fastapi import FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse, Response  # noqa: E402
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402

from .. import __version__  # noqa: E402
from ..core import logs, metrics  # noqa: E402
from ..core.errors import BadInput, DeadlineExceeded, DocfnError, PayloadTooLarge, Unavailable  # noqa: E402
from ..core.service import DocService, Outcome  # noqa: E402
from ..core.settings import ALL_TASKS, Settings, get_settings  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _IMPORT_START
metrics.IMPORT_SECONDS.set(IMPORT_SECONDS)
# The import phase is paid once per process: it is reported in the first cold request's timings only.
_import_unreported = threading.Event()
_import_unreported.set()
log = logging.getLogger("docfn.http")


def error_response(
    status: int, code: str, message: str, request_id: str, retry_after: int | None = None
) -> JSONResponse:
    headers = {"X-Request-Id": request_id}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(
        {"error": {"code": code, "message": message, "request_id": request_id}},
        status_code=status,
        headers=headers,
    )


async def read_body(request: Request, limit: int) -> tuple[bytes, str | None]:
    """The input file: the raw body, or the ``file`` part of a multipart form. Refuses > limit early."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise PayloadTooLarge(
            f"the body is {int(declared):,} bytes; the synchronous limit is {limit:,} bytes."
            " Upload larger inputs with POST /v1/uploads"
        )
    content_type = request.headers.get("content-type")
    if content_type and content_type.lower().startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=16)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadInput("multipart request has no file part named 'file'")
        data = await upload.read()
        return data, upload.content_type
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"the body exceeds the synchronous limit of {limit:,} bytes; upload it with POST /v1/uploads"
            )
        chunks.append(chunk)
    return b"".join(chunks), content_type


def server_timing(timings: dict[str, float]) -> str:
    return ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in timings.items())


def create_app(settings: Settings | None = None, service: DocService | None = None) -> FastAPI:
    settings = settings or get_settings()
    logs.configure(settings.log_level)
    service = service or DocService(settings)
    eager_state: dict[str, Any] = {"done": not settings.eager_load, "error": None}
    # One thread per admitted request: queued requests wait on the service's inference slot, so the
    # default executor (a handful of threads) must not become a second, unbounded queue.
    workers = ThreadPoolExecutor(max_workers=service.admission.capacity, thread_name_prefix="docfn-task")

    def eager_load() -> None:
        try:
            service.load_all()
        except Exception as exc:  # readiness reports it; liveness stays up so the pod can retry
            eager_state["error"] = str(exc)
            log.exception("eager model load failed")
        finally:
            eager_state["done"] = True

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        if settings.eager_load:
            threading.Thread(target=eager_load, name="docfn-eager-load", daemon=True).start()
        yield

    app = FastAPI(
        title="docfn",
        version=__version__,
        description="Serverless document-understanding functions: " + ", ".join(service.tasks),
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.settings = settings

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = request_id
        request.state.started = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Request-Id"] = request_id
        return response

    @app.exception_handler(DocfnError)
    async def docfn_error(request: Request, exc: DocfnError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, _rid(request), exc.retry_after)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), _rid(request))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "bad_options", str(exc.errors()), _rid(request))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(
            500, "internal_error", "internal error; see the log for this request id", _rid(request)
        )

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        tasks = {
            name: {
                "loaded": task.ready,
                "model": task.version_id,
                "error": str(task.load_error or "") or None,
            }
            for name, task in service.tasks.items()
        }
        if settings.eager_load:
            # Knative's activator holds requests until this says ready, so say it only once loaded.
            ready = eager_state["done"] and service.ready
        else:
            # A transient load failure (S3 unreachable: 503) keeps the instance in rotation, else no
            # request would ever arrive to retry the load; only a broken configuration takes it out.
            ready = all(
                t.ready or t.load_error is None or isinstance(t.load_error, Unavailable)
                for t in service.tasks.values()
            )
        body = {"ready": ready, "tasks": tasks, "eager_load": settings.eager_load}
        if not ready and eager_state["error"]:
            body["error"] = eager_state["error"]
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"])
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def run_task(task: str, request: Request) -> Response:
        request_id = _rid(request)
        status, outcome, error_code = 500, None, None
        try:
            data, content_type = await read_body(request, settings.max_body_bytes)
            options = dict(request.query_params)
            loop = asyncio.get_running_loop()
            try:
                with service.admission.admit():
                    outcome = await asyncio.wait_for(
                        loop.run_in_executor(workers, service.run, task, data, content_type, options),
                        timeout=settings.inference_timeout_seconds,
                    )
            except TimeoutError:
                raise DeadlineExceeded(
                    f"inference did not finish within {settings.inference_timeout_seconds:g} s;"
                    " send fewer pages or use an asynchronous upload (POST /v1/uploads)"
                ) from None
            if outcome.cold and _import_unreported.is_set():
                _import_unreported.clear()
                outcome.timings = {"import": IMPORT_SECONDS, **outcome.timings}
            status = 200
            return _ok(outcome, request_id)
        except DocfnError as exc:
            status, error_code = exc.status, exc.code
            metrics.ERRORS.labels(task, exc.code).inc()
            raise
        finally:
            _observe(task, request, status, outcome, error_code)

    def _ok(outcome: Outcome, request_id: str) -> JSONResponse:
        headers = {
            "X-Request-Id": request_id,
            "X-Docfn-Cache": "hit" if outcome.cached else "miss",
            "X-Docfn-Cold": "1" if outcome.cold else "0",
            "Server-Timing": server_timing(outcome.timings),
        }
        return JSONResponse(outcome.body(request_id), headers=headers)

    def _observe(
        task: str, request: Request, status: int, outcome: Outcome | None, error_code: str | None
    ) -> None:
        elapsed = time.perf_counter() - request.state.started
        metrics.REQUESTS.labels(task, str(status)).inc()
        metrics.LATENCY.labels(task).observe(elapsed)
        fields: dict[str, Any] = {
            "request_id": _rid(request),
            "task": task,
            "status": status,
            "duration_ms": round(elapsed * 1000, 1),
        }
        if outcome is not None:
            for phase, seconds in outcome.timings.items():
                metrics.PHASE_SECONDS.labels(task, phase).observe(seconds)
            fields.update(outcome.log_fields())
        if error_code:
            fields["error"] = error_code
        logs.log_request(**fields)

    # Extensions first: Starlette takes the first matching route, and POST /v1/{task} matches
    # /v1/uploads too.
    # Importing the jobs adapter registers /v1/uploads, /v1/jobs and /v1/events (boto3 stays lazy).
    from . import jobs  # noqa: F401

    for extension in _EXTENSIONS:
        extension(app, service, settings)

    @app.post("/v1/{task}", tags=["tasks"], summary="Run a task on an image or PDF")
    async def run_v1(task: str, request: Request) -> Response:
        return await run_task(task, request)

    for alias in ALL_TASKS:  # the front door's short paths (/ocr, /chart, …)
        app.add_api_route(
            f"/{alias}", _alias(alias, run_task), methods=["POST"], tags=["tasks"], include_in_schema=False
        )

    return app


def _alias(
    task: str, handler: Callable[[str, Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(task, request)

    endpoint.__name__ = f"run_{task}_alias"
    return endpoint


def _rid(request: Request) -> str:
    return getattr(request.state, "request_id", None) or uuid.uuid4().hex


# Routers added by other adapters (uploads/jobs/events) without this module knowing them.
_EXTENSIONS: list[Callable[[FastAPI, DocService, Settings], None]] = []


def register_extension(extension: Callable[[FastAPI, DocService, Settings], None]) -> None:
    if extension not in _EXTENSIONS:  # a re-imported module must not add its routes twice
        _EXTENSIONS.append(extension)
