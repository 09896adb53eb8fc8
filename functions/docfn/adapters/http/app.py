"""The FastAPI app: the same ASGI app runs under uvicorn (Knative, local) and Mangum (Lambda).

HTTP only: reading bodies, status codes, headers, metrics and the request log line. Everything
else is the service's (``docfn.service``), built by ``docfn.adapters.wiring`` unless handed in.
"""

from __future__ import annotations

import time

_IMPORT_START = time.perf_counter()

import asyncio  # noqa: E402
import logging  # noqa: E402
import threading  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Awaitable, Callable, Mapping  # noqa: E402
from concurrent.futures import Executor, ThreadPoolExecutor  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from functools import partial  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

from fastapi import FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse, Response  # noqa: E402
from fastapi_offline import FastAPIOffline  # noqa: E402
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402

from ... import __version__  # noqa: E402
from ...core import logs, metrics  # noqa: E402
from ...core.errors import ClientClosedRequest, DeadlineExceeded, DocfnError  # noqa: E402
from ...core.settings import ALL_TASKS, Settings, get_settings  # noqa: E402
from ...packs.store import LocalPack  # noqa: E402
from ...service.admission import Admission  # noqa: E402
from ...service.outcome import Outcome  # noqa: E402
from ...service.request_log import log_request  # noqa: E402
from ...service.service import DocService  # noqa: E402
from ...service.upload_jobs import UploadProcessor  # noqa: E402
from ...service.upload_watch import UploadWatcher  # noqa: E402
from ...tasks.contract import TextTask  # noqa: E402
from ..wiring import api_key, build_service, task_groups, upload_processor  # noqa: E402
from . import vlm_crops  # noqa: E402
from .body import TaskInput, http_error_code, is_multipart, read_body  # noqa: E402
from .cors import add_cors  # noqa: E402
from .mineru_api import add_mineru_routes  # noqa: E402
from .mineru_tasks import add_task_routes  # noqa: E402
from .openai_api import add_openai_routes  # noqa: E402
from .openapi import task_operation  # noqa: E402
from .try_page import add_try_page  # noqa: E402
from .upload_routes import add_upload_routes  # noqa: E402
from .url_inputs import URL_FIELD, UrlInputs  # noqa: E402

T = TypeVar("T")
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


def server_timing(timings: dict[str, float]) -> str:
    return ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in timings.items())


def create_app(
    settings: Settings | None = None,
    service: DocService | None = None,
    jobs: UploadProcessor | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    logs.configure(settings.log_level, emf=settings.metrics_emf)
    service = service or build_service(settings)
    jobs = jobs or upload_processor(service)
    # One thread per admitted request: queued requests wait on the service's inference slot, so the
    # default executor (a handful of threads) must not become a second, unbounded queue.
    workers = ThreadPoolExecutor(max_workers=service.admission.capacity, thread_name_prefix="docfn-task")
    # The VLM's requests, one thread each while it waits in the batching queue (threads start on
    # demand: an instance that serves no VLM never starts one).
    vlm_workers = ThreadPoolExecutor(
        max_workers=service.vlm_admission.capacity, thread_name_prefix="docfn-vlm-request"
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        if settings.eager_load:
            service.start_eager_load()
        watcher = (
            UploadWatcher(jobs, settings.watch_uploads_seconds) if settings.watch_uploads_seconds else None
        )
        if watcher is not None:
            watcher.start()
        yield
        if watcher is not None:
            watcher.stop()

    # Swagger UI and ReDoc from the fastapi-offline package, not a CDN: /docs works air-gapped.
    app = FastAPIOffline(
        static_url="/docs/assets",
        title="docfn",
        version=__version__,
        description="Serverless document-understanding functions: " + ", ".join(service.tasks),
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.jobs = jobs

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
        return error_response(
            exc.status_code, http_error_code(exc.status_code), str(exc.detail), _rid(request)
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "bad_options", str(exc.errors()), _rid(request))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(
            500, "internal_error", "internal error; see the log for this request id", _rid(request)
        )

    add_cors(app, settings)

    @app.api_route("/healthz", methods=["GET", "HEAD"], tags=["operations"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.api_route("/readyz", methods=["GET", "HEAD"], tags=["operations"])
    async def readyz() -> JSONResponse:
        body = service.readiness()
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/metrics", tags=["operations"])
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    url_inputs = UrlInputs(settings, lambda: jobs.store)

    async def admitted(
        work: Callable[[], T], admission: Admission | None = None, executor: Executor | None = None
    ) -> T:
        """``work`` admitted (by default as page work: the page tasks' queue and threads), in a
        worker thread, answered within the inference deadline (504 past it, 429 past capacity)."""
        admission = admission or service.admission
        # The place in the queue is held until the worker thread stops, not until we stop waiting.
        future = admission.submit(executor or workers, work)
        try:
            return await asyncio.wait_for(
                asyncio.wrap_future(future), timeout=settings.inference_timeout_seconds
            )
        except TimeoutError:
            raise service.deadline_exceeded() from None

    async def execute(task: str, given: TaskInput, options: dict[str, str]) -> Outcome:
        """One task run for an HTTP front door: admitted, in a worker thread, within the deadline."""
        timeout = settings.inference_timeout_seconds
        run = partial(
            service.run,
            task,
            given.data,
            given.content_type,
            options,
            max_bytes=given.max_bytes,
            deadline=time.monotonic() + timeout,
            instruction=given.instruction,
        )
        admission = service.admission_for(task)
        executor = vlm_workers if admission is service.vlm_admission else workers
        outcome = await admitted(run, admission, executor)
        if outcome.cold and _import_unreported.is_set():
            _import_unreported.clear()
            outcome.timings = {"import": IMPORT_SECONDS, **outcome.timings}
        return outcome

    async def run_task(task: str, request: Request) -> Response:
        request_id = _rid(request)
        status, outcome, error_code = 500, None, None
        try:
            options = {k: v for k, v in request.query_params.items() if k != URL_FIELD}
            given = await url_inputs.read(request)
            if given is None and _takes_crops(task) and is_multipart(request):
                read = await vlm_crops.read_inputs(request, settings.max_body_bytes)
                if isinstance(read, list):  # several crops: a list of answers (vlm_crops)
                    outcomes = await run_crops(task, read, options)
                    status = 200
                    return JSONResponse(vlm_crops.body(task, outcomes, request_id), headers=_ids(request_id))
                given, options = read[0], {**options, **read[1]}
            given = given or await read_body(request, settings.max_body_bytes)
            outcome = await execute(task, given, options)
            status = 200
            return _ok(outcome, request_id)
        except DocfnError as exc:
            status, error_code = exc.status, exc.code
            if not isinstance(exc, ClientClosedRequest):  # counted apart, in _observe
                metrics.count_error(task, exc.code)
            raise
        except StarletteHTTPException as exc:
            # Starlette's own refusals (a malformed multipart body: 400) are logged and counted with
            # the status the client gets, not as 500s: no false 5xx alerts.
            status, error_code = exc.status_code, http_error_code(exc.status_code)
            metrics.count_error(task, error_code)
            raise
        finally:
            _observe(task, request, status, outcome, error_code)

    def _takes_crops(task: str) -> bool:
        hosted = service.tasks.get(task)
        return hosted is not None and hosted.task.vlm_queued

    async def run_crops(task: str, crops: list[vlm_crops.Crop], options: dict[str, str]) -> list[Outcome]:
        """A many-crop request: admitted once to the VLM's queue, its crops run side by side, within
        the VLM's own deadline (a page of crops outlasts the 25 s a single input gets; it is sent to
        the function itself, as chat completions are, not through a 30 s front door)."""
        timeout = settings.vlm_timeout_seconds

        def one(data: bytes, content_type: str | None, given: Mapping[str, str], deadline: float) -> Outcome:
            return service.run(task, data, content_type, given, deadline=deadline)

        work = partial(vlm_crops.run_crops, one, crops, options, timeout)
        future = service.admission_for(task).submit(vlm_workers, work)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=timeout)
        except TimeoutError:
            raise DeadlineExceeded(
                f"the {len(crops)} crops were not all answered within {timeout:g} s"
                " (DOCFN_VLM_TIMEOUT_SECONDS); send fewer crops per request"
            ) from None

    def _ids(request_id: str) -> dict[str, str]:
        return {"X-Request-Id": request_id}

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
        # Bounded labels (docfn.core.labels): POST /v1/<anything> is counted as task="unknown".
        metrics.count_request(task, status, time.perf_counter() - request.state.started)
        if status == ClientClosedRequest.status:
            metrics.count_client_disconnect(task)
        if outcome is not None:
            metrics.observe_phases(task, outcome.timings)
        log_request(
            request_id=_rid(request),
            task=task,
            status=status,
            started=request.state.started,
            outcome=outcome,
            error=error_code,
        )

    # Specific routes first: Starlette takes the first match, and POST /v1/{task} matches /v1/uploads.
    add_upload_routes(app, service, jobs)
    if "parse" in service.tasks:  # MinerU's API is parse's
        add_mineru_routes(app, execute, _observe, service.limits, settings.max_body_bytes)
        add_task_routes(app, service, task_groups(jobs), settings, url_inputs.fetch, _observe)
    if "vlm" in service.tasks:  # what MinerU's http-client backend calls (a vLLM server's API)
        add_openai_routes(app, service, settings, vlm_workers, api_key(settings), url_inputs.fetch)
    add_try_page(app, service.limits, settings.max_body_bytes, admitted, _ocr_pack(service))

    for name, hosted in service.tasks.items():  # documented with the task's options
        app.add_api_route(
            f"/v1/{name}",
            _bound(name, run_task),
            methods=["POST"],
            tags=["tasks"],
            summary=f"Run {name} on an image or PDF",
            openapi_extra=task_operation(hosted.task.Options, text=isinstance(hosted.task, TextTask)),
        )

    @app.post("/v1/{task}", tags=["tasks"], summary="Run a task on an image or PDF")
    async def run_v1(task: str, request: Request) -> Response:
        return await run_task(task, request)  # tasks not served here: the service answers 404

    for alias in ALL_TASKS:  # the front door's short paths (/ocr, /chart, …); served ones documented
        hosted = service.tasks.get(alias)
        app.add_api_route(
            f"/{alias}",
            _bound(alias, run_task),
            methods=["POST"],
            tags=["tasks"],
            summary=f"Short alias of POST /v1/{alias}",
            include_in_schema=hosted is not None,
            openapi_extra=(
                task_operation(hosted.task.Options, text=isinstance(hosted.task, TextTask))
                if hosted is not None
                else None
            ),
        )

    return app


def _bound(
    task: str, handler: Callable[[str, Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(task, request)

    endpoint.__name__ = f"run_{task}"
    return endpoint


def _rid(request: Request) -> str:
    return getattr(request.state, "request_id", None) or uuid.uuid4().hex


def _ocr_pack(service: DocService) -> Callable[[], LocalPack] | None:
    """The OCR pack of the first served task that has one (ocr, else table/parse's): what the page's
    "read in this browser" mode fetches. None when no served task reads text with an OCR pack."""
    for hosted in service.tasks.values():
        for role, ref in hosted.refs.items():
            if ref.name.startswith("ocr-"):
                return partial(hosted.local_pack, role)
    return None
