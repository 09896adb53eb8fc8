"""MinerU 4's task API on docfn's ``parse`` and its job store (the bucket):

- ``POST /v1/tasks``: a task of one or more files (``mineru_task_inputs``) → 202 and MinerU's task
  payload (``task_id``, ``status``, ``status_url``, ``result_url``, ``files``, …). Each file is one
  job of the upload-job store, run by its upload's event (``task_groups``): an instance needs
  ``DOCFN_BUCKET`` (503 otherwise), and a local S3 server needs ``DOCFN_WATCH_UPLOADS_SECONDS``.
- ``GET /v1/tasks/{id}``: the payload as it stands.
- ``GET /v1/tasks/{id}/result``: 202 and the payload while it runs, 409 once failed or canceled, else
  200 with each completed file's ``content`` (``markdown``, ``middle_json``, ``structured_content``
  as asked) or, with ``?response_format=zip`` (``zip`` among the task's ``output_formats``), its
  archive (several files: each under ``0001/``, … with ``manifest.json``).
- ``DELETE /v1/tasks/{id}``: cancels a task that has not ended (409 once it has).

``sha256sum`` (a raw upload's): MinerU reuses bytes it already holds and then does not read the body.
docfn holds results, not bytes: when the file that hash names was parsed before with the same
options and its result is still in the result cache, the task is created completed from it, without
the body being read (the connection is closed after the answer, as MinerU does), once the declared
``Content-Length`` matches the cached file's size (400 otherwise). Otherwise the body is read and
must hash to it (400 ``file_hash_mismatch``).

``callback`` {url, secret} (JSON requests, as in MinerU's model): when the task ends (completed,
partial or failed) its final payload is POSTed there, signed (``callbacks``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ...core.errors import BadInput, DocfnError
from ...core.settings import Settings
from ...service.outcome import Outcome
from ...service.service import DocService
from ...service.task_groups import GroupInput, GroupView, TaskGroups
from . import mineru_v4 as v4
from .callbacks import CallbackSender
from .mineru_task_inputs import (
    QueryOptions,
    Submission,
    declared_size,
    media_type,
    query_options,
    read_json,
    read_multipart,
    read_raw,
)
from .url_inputs import Fetch

TASK = "parse"
Observe = Callable[[str, Request, int, Outcome | None, str | None], None]
# MinerU's codes for the task API's own refusals.
_MINERU_CODES = {"not_found": "job_not_found", "conflict": "job_already_terminal"}


class HashMismatch(BadInput):
    code = "file_hash_mismatch"


class SizeMismatch(BadInput):
    code = "upload_size_mismatch"


class UnsupportedType(DocfnError):
    status, code = 415, "unsupported_media_type"


def add_task_routes(
    app: FastAPI,
    service: DocService,
    groups: TaskGroups,
    settings: Settings,
    fetch: Fetch,
    observe: Observe,
) -> None:
    """``groups``: the task groups over this function's bucket (their calls answer 503 without one)."""
    callbacks = CallbackSender(settings)
    limit = settings.max_upload_bytes

    async def mineru_errors(request: Request, call: Callable[[], Awaitable[Response]]) -> Response:
        """The route's answer, its refusals in MinerU's error shape and codes; one log line each."""
        try:
            response = await call()
        except DocfnError as exc:
            observe(TASK, request, exc.status, None, exc.code)
            body = v4.error_body(exc)
            body["error"]["code"] = _MINERU_CODES.get(exc.code, exc.code)
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
            return JSONResponse(body, status_code=v4.mineru_status(exc), headers=headers)
        observe(TASK, request, response.status_code, None, None)
        return response

    @app.post("/v1/tasks", tags=["MinerU"], summary="MinerU 4: create a parse task (202)", status_code=202)
    async def create_task(request: Request) -> Response:
        return await mineru_errors(request, lambda: _create(request))

    async def _create(request: Request) -> Response:
        kind = media_type(request)
        if kind == "application/json":
            submission = await read_json(request, settings.max_body_bytes, fetch, callbacks)
            inputs = _inputs(submission)
        elif kind == "multipart/form-data":
            submission = await read_multipart(request, query_options(request), limit)
            inputs = _inputs(submission)
        elif kind == "application/octet-stream":
            options = query_options(request)
            cached = await _cached_upload(request, options)
            if cached is not None:
                view = await run_in_threadpool(_group(submission_of(options)), [cached])
                # The body was never read: close the connection rather than leave it half-read.
                return JSONResponse(v4.task_payload(view), status_code=202, headers={"Connection": "close"})
            submission = await read_raw(request, options, limit)
            if (
                options.sha256sum
                and hashlib.sha256(submission.files[0].data).hexdigest() != options.sha256sum
            ):
                raise HashMismatch("SHA-256 mismatch: the body does not hash to sha256sum")
            inputs = _inputs(submission)
        else:
            raise UnsupportedType("Use application/json, multipart/form-data or application/octet-stream")
        for item in inputs:
            service.validate_options(TASK, item.options)  # 400 now, not a failed job later
        view = await run_in_threadpool(_group(submission), inputs)
        return JSONResponse(v4.task_payload(view), status_code=202)

    def _group(submission: Submission) -> Callable[[list[GroupInput]], GroupView]:
        meta = {
            "tier": submission.tier,
            "ocr_mode": submission.ocr_mode,
            "output_formats": submission.output_formats,
        }
        return lambda inputs: groups.create(TASK, inputs, meta, submission.callback)

    async def _cached_upload(request: Request, options: QueryOptions) -> GroupInput | None:
        """The file a raw upload's ``sha256sum`` names, answered from the result cache, or None."""
        if options.sha256sum is None or options.filename is None:
            return None
        size = declared_size(request, limit)
        submission = submission_of(options)
        job_options = _job_options(submission, options.page_range)
        outcome = await run_in_threadpool(service.cached, TASK, options.sha256sum, job_options)
        if outcome is None:
            return None
        if outcome.bytes != size:
            raise SizeMismatch("Declared size does not match cached bytes")
        return GroupInput(options.filename, job_options, options.page_range, cached=outcome)

    @app.get("/v1/tasks/{task_id}", tags=["MinerU"], summary="MinerU 4: a task's status")
    async def get_task(task_id: str, request: Request) -> Response:
        async def status() -> Response:
            view = await run_in_threadpool(lambda: groups.view(task_id))
            return JSONResponse(v4.task_payload(view))

        return await mineru_errors(request, status)

    @app.delete("/v1/tasks/{task_id}", tags=["MinerU"], summary="MinerU 4: cancel a task")
    async def cancel_task(task_id: str, request: Request) -> Response:
        async def cancel() -> Response:
            view = await run_in_threadpool(lambda: groups.cancel(task_id))
            return JSONResponse(v4.task_payload(view))

        return await mineru_errors(request, cancel)

    @app.get("/v1/tasks/{task_id}/result", tags=["MinerU"], summary="MinerU 4: a task's result")
    async def task_result(task_id: str, request: Request, response_format: str = "json") -> Response:
        async def result() -> Response:
            if response_format not in ("json", "zip"):
                raise BadInput("response_format must be json or zip")
            return await run_in_threadpool(_result, groups, task_id, response_format)

        return await mineru_errors(request, result)


def submission_of(options: QueryOptions) -> Submission:
    return Submission(options.tier, options.ocr_mode, options.output_formats)


def _job_options(submission: Submission, page_range: str) -> dict[str, str]:
    """The docfn parse options of one file's job: its pages, MinerU's ``ocr_mode`` as parse's
    ``mode`` (auto, txt, ocr: the same choice), images only when an archive is asked for."""
    options = {
        "mode": submission.ocr_mode,
        "images": "base64" if "zip" in submission.output_formats else "none",
    }
    pages = v4.pages_option(page_range)
    if pages is not None:
        options["pages"] = pages
    return options


def _inputs(submission: Submission) -> list[GroupInput]:
    return [
        GroupInput(
            file.name,
            _job_options(submission, file.page_range),
            file.page_range,
            data=file.data,
            content_type=file.content_type,
        )
        for file in submission.files
    ]


def _result(groups: TaskGroups, task_id: str, response_format: str) -> Response:
    """MinerU's ``build_task_result``: 202 while running, 409 once failed or canceled, else content."""
    view = groups.view(task_id)
    payload = v4.task_payload(view)
    if not view.terminal:
        return JSONResponse(payload, status_code=202)
    if view.state in ("failed", "canceled"):
        return JSONResponse(payload, status_code=409)
    formats = payload["output_formats"]
    completed = [(index, job) for index, job in enumerate(view.jobs) if job.state == "succeeded"]
    results = {job.job_id: groups.result(job.job_id)["result"] for _, job in completed}
    if response_format == "zip":
        if "zip" not in formats:
            raise BadInput("Request zip in output_formats when submitting the task")
        archives = [(index + 1, v4.result_zip(results[job.job_id])) for index, job in completed]
        data = archives[0][1] if len(view.jobs) == 1 else v4.combined_zip(archives, payload)
        headers = {
            "Content-Disposition": f'attachment; filename="{task_id}.zip"',
            "X-MinerU-Task-Id": task_id,
            "X-MinerU-Task-Status": view.state,
        }
        return Response(data, media_type="application/zip", headers=headers)
    for file, job in zip(payload["files"], view.jobs, strict=True):
        file["content"] = {}
        if job.state != "succeeded":
            continue
        result = results[job.job_id]
        file["content"] = v4.file_content(result, formats)
        file["page_range"] = v4.parsed_pages(result)
        file["parse"]["model_used"] = result.get("model")
    return JSONResponse(payload)
