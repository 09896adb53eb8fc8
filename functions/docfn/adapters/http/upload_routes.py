"""HTTP routes for asynchronous work.

- ``POST /v1/uploads``: a presigned upload for inputs above the synchronous payload limit.
- ``GET /v1/jobs/{id}``: job status and where the result is.
- ``POST /v1/events``: an upload event delivered over HTTP (Knative Eventing: a CloudEvent in
  binary or structured mode whose data is the S3 notification, or the raw S3 / EventBridge JSON).
  The answer tells the broker what to do: 200 done (or nothing to do), 503 + Retry-After for
  transient failures (retry), 422 for inputs that will never succeed (dead-letter, no retry).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ...core.errors import BadInput, DocfnError
from ...service.service import DocService
from ...service.upload_jobs import JobReport, UploadProcessor
from ..events.registry import object_refs


async def _upload_params(request: Request) -> dict[str, Any]:
    """Parameters from the JSON body and/or the query string (the query wins: routing reads it)."""
    params: dict[str, Any] = {}
    body = await request.body()
    if body.strip():
        try:
            parsed = json.loads(body)
        except ValueError:
            raise BadInput("POST /v1/uploads takes a JSON object (task, filename, content_type)") from None
        if not isinstance(parsed, dict):
            raise BadInput("POST /v1/uploads takes a JSON object (task, filename, content_type)")
        params.update(parsed)
    params.update(
        {k: v for k, v in request.query_params.items() if k in {"task", "filename", "content_type"}}
    )
    for required in ("task", "filename"):
        if not isinstance(params.get(required), str) or not params[required]:
            raise BadInput(f"POST /v1/uploads needs {required!r} (JSON body or query parameter)")
    options = params.get("options") or {}
    if not isinstance(options, dict):
        raise BadInput('\'options\' must be an object of task options, e.g. {"pages": "1-3"}')
    params["options"] = options
    return params


def add_upload_routes(app: FastAPI, service: DocService, processor: UploadProcessor) -> None:
    @app.post("/v1/uploads", tags=["jobs"], summary="Presigned upload for a large input", status_code=201)
    async def create_upload(request: Request) -> JSONResponse:
        params = await _upload_params(request)
        body = await run_in_threadpool(
            processor.create_upload,
            params["task"],
            params["filename"],
            params.get("content_type"),
            params["options"],
        )
        return JSONResponse(body, status_code=201, headers={"Location": body["status_url"]})

    @app.get("/v1/jobs/{job_id}", tags=["jobs"], summary="Job status and result location")
    async def job_status(job_id: str) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(processor.job, job_id))

    @app.post("/v1/events", tags=["jobs"], summary="Upload events (Knative Eventing, S3, EventBridge)")
    async def events(request: Request) -> JSONResponse:
        request_id = (
            request.headers.get("ce-id") or getattr(request.state, "request_id", None) or uuid.uuid4().hex
        )
        refs = object_refs(await request.body())
        reports: list[JobReport] = []
        # Counted by the same bounded queue as synchronous requests: past capacity this answers
        # 429 and the broker retries later, instead of piling up work in memory.
        with service.admission.admit():
            for ref in refs:
                reports.append(
                    await run_in_threadpool(processor.process, ref, request_id=request_id, source="http")
                )
        records = [report.to_dict() for report in reports]
        failed = [report for report in reports if report.failed]
        if not failed:
            return JSONResponse({"records": records})
        retry = any(report.retryable for report in failed)
        first = next(report for report in failed if report.retryable == retry).error or DocfnError("failed")
        headers = {"X-Request-Id": request_id}
        if retry:
            headers["Retry-After"] = str(first.retry_after or 5)
        error = {"code": first.code, "message": first.message, "request_id": request_id}
        return JSONResponse(
            {"error": error, "records": records}, status_code=503 if retry else 422, headers=headers
        )
