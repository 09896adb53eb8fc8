"""``docfn.client``: call a deployed docfn function from Python (httpx).

    from docfn.client import Client

    with Client("https://docfn.example.com") as docfn:
        page = docfn.run("ocr", Path("page.png"))
        print(page.result["text"], page.timings_ms)

- Timeouts on every request; retries with exponential backoff on 429, 502, 503, 504 and broken
  connections, waiting what ``Retry-After`` says when the server says it.
- Inputs above ``upload_above_bytes`` (or answered 413) go through ``POST /v1/uploads``: the file is
  PUT to the presigned URL, the job is polled until it ends, and its ``result.json`` read back.
- Answers are typed (:class:`TaskResult`, :class:`Job`); error answers raise the same
  :class:`~docfn.core.errors.DocfnError` subclasses the server raised (``BadInput`` for 400, …).

Only httpx and docfn's error types are imported: no models, no service.
"""

from __future__ import annotations

import email.utils
import mimetypes
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from .core.errors import DocfnError

RETRY_STATUSES = frozenset({429, 502, 503, 504})
# The largest synchronous body every deployment takes (Lambda's payload limit); larger goes async.
DEFAULT_UPLOAD_ABOVE_BYTES = 6 * 1024 * 1024


@dataclass(frozen=True)
class TaskResult:
    """One task's answer: what ``POST /v1/{task}`` (or a job's result.json) returns."""

    task: str
    result: dict[str, Any]
    input_sha256: str
    cached: bool
    cold: bool
    request_id: str | None
    timings_ms: dict[str, float] = field(default_factory=dict)
    job_id: str | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> TaskResult:
        return cls(
            task=body["task"],
            result=body["result"],
            input_sha256=body["input_sha256"],
            cached=bool(body["cached"]),
            cold=bool(body["cold"]),
            request_id=body.get("request_id"),
            timings_ms=dict(body.get("timings_ms") or {}),
            job_id=body.get("job_id"),
        )

    def body(self) -> dict[str, Any]:
        """The answer's body, in the order the server writes it (what ``docfn run`` renders)."""
        return {
            "task": self.task,
            "request_id": self.request_id,
            "input_sha256": self.input_sha256,
            "cached": self.cached,
            "cold": self.cold,
            "timings_ms": self.timings_ms,
            "result": self.result,
        }


@dataclass(frozen=True)
class Job:
    """An asynchronous job, as ``GET /v1/jobs/{id}`` describes it."""

    job_id: str
    task: str
    state: str
    result_urls: dict[str, str] = field(default_factory=dict)
    error: dict[str, str] | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed")


def _error_types() -> list[type[DocfnError]]:
    """The server's error classes, general before specific (BadInput before its subclasses)."""
    found: list[type[DocfnError]] = [DocfnError]
    for kind in found:
        found.extend(kind.__subclasses__())
    return found


def error_type(status: int, code: str | None) -> type[DocfnError]:
    """The class the server raised: by its code, else the most general one of the status."""
    kinds = _error_types()
    by_code = next((kind for kind in kinds if kind.code == code), None)
    return by_code or next((kind for kind in kinds if kind.status == status), DocfnError)


def raise_for_error(response: httpx.Response) -> None:
    """Raises the docfn error an error answer carries, with the server's code and message."""
    if response.is_success:
        return
    try:
        error = response.json()["error"]
        message, code = str(error["message"]), str(error["code"])
    except (ValueError, KeyError, TypeError):
        message, code = response.text[:500] or response.reason_phrase, "http_error"
    kind = error_type(response.status_code, code)
    exc = kind(message, retry_after=retry_after_seconds(response))
    exc.code = code
    exc.status = response.status_code
    raise exc


def retry_after_seconds(response: httpx.Response) -> int | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, int(when.timestamp() - time.time()))


class Client:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        backoff_seconds: float = 1.0,
        max_wait_seconds: float = 60.0,
        upload_above_bytes: int = DEFAULT_UPLOAD_ABOVE_BYTES,
        poll_seconds: float = 1.0,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, headers=dict(headers or {}))
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.max_wait_seconds = max_wait_seconds
        self.upload_above_bytes = upload_above_bytes
        self.poll_seconds = poll_seconds
        self.sleep = sleep

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- tasks -----------------------------------------------------------------------------------

    def run(
        self,
        task: str,
        document: bytes | Path,
        *,
        content_type: str | None = None,
        filename: str | None = None,
        options: Mapping[str, Any] | None = None,
        job_timeout_seconds: float = 900.0,
    ) -> TaskResult:
        """Runs ``task`` on a document (bytes or a file): synchronously, or as an upload job when it
        is larger than ``upload_above_bytes`` or the function answers 413."""
        if isinstance(document, Path):
            filename = filename or document.name
            content_type = content_type or mimetypes.guess_type(document.name)[0]
            data = document.read_bytes()
        else:
            data = document
        params = _options(options)
        if len(data) <= self.upload_above_bytes:
            headers = {"content-type": content_type or "application/octet-stream"}
            response = self.request("POST", f"/v1/{task}", content=data, params=params, headers=headers)
            if response.status_code != 413:
                raise_for_error(response)
                return TaskResult.from_body(response.json())
        job = self.upload(
            task, data, filename=filename or "document", content_type=content_type, options=params
        )
        return self.wait(job.job_id, timeout_seconds=job_timeout_seconds)

    def run_crops(
        self,
        task: str,
        crops: Sequence[bytes],
        *,
        prompts: str | Sequence[str] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> list[TaskResult]:
        """Runs a VLM task (``vlm``, ``formula``, ``chart``) on a page's block crops (PNG or JPEG
        bytes, at most 32) in one request, and returns their answers in order: on Lambda, where an
        instance serves one request at a time, this is how the crops share the VLM's batches
        (docs/vlm.md, "On Lambda"). ``prompts``: one for every crop or one per crop (``vlm``)."""
        given = [prompts] if isinstance(prompts, str) else list(prompts or [])
        files = [("files", (f"crop{n}", data, _image_type(data))) for n, data in enumerate(crops)]
        form = {"prompt": given} if given else None
        response = self.request("POST", f"/v1/{task}", files=files, data=form, params=_options(options))
        raise_for_error(response)
        body = response.json()
        if "results" not in body:  # one crop: the ordinary single-input answer
            return [TaskResult.from_body(body)]
        return [
            TaskResult.from_body({**entry, "task": body["task"], "request_id": body["request_id"]})
            for entry in body["results"]
        ]

    def run_url(self, task: str, url: str, *, options: Mapping[str, Any] | None = None) -> TaskResult:
        """Runs ``task`` on a document the function fetches itself (``https://`` or its ``s3://``)."""
        response = self.request("POST", f"/v1/{task}", json={"url": url}, params=_options(options))
        raise_for_error(response)
        return TaskResult.from_body(response.json())

    # -- asynchronous jobs -----------------------------------------------------------------------

    def upload(
        self,
        task: str,
        data: bytes,
        *,
        filename: str,
        content_type: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Job:
        """Creates an upload job and PUTs ``data`` to its presigned URL; the upload starts the job."""
        request: dict[str, Any] = {"task": task, "filename": filename, "options": _options(options)}
        if content_type:
            request["content_type"] = content_type
        created = self.request("POST", "/v1/uploads", json=request)
        raise_for_error(created)
        body = created.json()
        upload = body["upload"]
        # The presigned URL is another host (S3): no base URL, no docfn headers, the signed ones only.
        put = self._send(
            lambda: httpx.request(
                upload["method"],
                upload["url"],
                content=data,
                headers=upload["headers"],
                timeout=self.http.timeout,
            )
        )
        raise_for_error(put)
        return Job(body["job_id"], body["task"], "queued")

    def job(self, job_id: str) -> Job:
        response = self.request("GET", f"/v1/jobs/{job_id}")
        raise_for_error(response)
        body = response.json()
        return Job(
            body["job_id"], body["task"], body["state"], body.get("result_urls") or {}, body.get("error")
        )

    def wait(self, job_id: str, *, timeout_seconds: float = 900.0) -> TaskResult:
        """Polls the job until it ends; its result, or the error it failed with."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            job = self.job(job_id)
            if job.state == "succeeded":
                url = job.result_urls["result.json"]  # presigned: S3, not the function
                result = self._send(partial(httpx.get, url, timeout=self.http.timeout))
                raise_for_error(result)
                return TaskResult.from_body(result.json())
            if job.state == "failed":
                error = job.error or {}
                exc = error_type(500, error.get("code"))(error.get("message", f"job {job_id} failed"))
                exc.code = error.get("code", exc.code)
                raise exc
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.state} after {timeout_seconds:g} s")
            self.sleep(self.poll_seconds)

    # -- transport -------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One docfn request with retries (statuses in RETRY_STATUSES, broken connections)."""
        return self._send(lambda: self.http.request(method, path, **kwargs))

    def _send(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = send()
            except httpx.TransportError:
                if last:
                    raise
                self.sleep(self._backoff(attempt, None))
                continue
            if response.status_code not in RETRY_STATUSES or last:
                return response
            self.sleep(self._backoff(attempt, retry_after_seconds(response)))
        raise AssertionError("unreachable")  # the loop returns or raises on its last attempt

    def _backoff(self, attempt: int, retry_after: int | None) -> float:
        wait = retry_after if retry_after is not None else self.backoff_seconds * 2**attempt
        return float(min(wait, self.max_wait_seconds))


def _image_type(data: bytes) -> str:
    """A crop's content type from its first bytes (the server checks it again)."""
    return "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/png"


def _options(options: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (options or {}).items()}
