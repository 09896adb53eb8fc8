"""Asynchronous jobs: presigned uploads in, results and status out. No HTTP, Lambda or Knative here.

An upload to ``uploads/<task>/<job_id>/<filename>`` produces an ObjectCreated event; whichever
adapter receives it (the Lambda handler for S3 direct / SQS / EventBridge, ``POST /v1/events`` on
Knative) hands the decoded object reference to :meth:`UploadProcessor.process`, which:

1. ignores keys outside ``uploads/<task>/`` (a function never re-triggers on its own ``results/``);
2. skips the work when ``status.json`` already says *succeeded* for the same input sha256, so a
   re-delivered event is harmless (S3, SQS and the Knative broker all deliver at least once);
   and takes the job's claim (``job_claims``) first, so two instances given the same event at once
   run it once: the loser answers *job_in_progress* (503, retried later), never a second result;
   a run that loses its claim mid-job (it stalled past its lease) stops and writes nothing;
3. runs the task through :class:`DocService` (which also fills the shared result cache);
4. writes ``result.json`` (+ ``result.md``) first and ``status.json`` last, so a reader that sees
   *succeeded* always finds the result, and a storage outage leaves at worst a stale *running*.

Jobs also come from MinerU's task API (``task_groups``): :meth:`UploadProcessor.submit` writes the
bytes it was given where an upload lands (the same event runs them), :meth:`complete_cached` records
a job answered from the result cache, :meth:`cancel` stops a queued one (its event then skips it),
and ``on_job_end`` hears when a job of a group ends.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..core.documents import MEDIA_TYPES
from ..core.errors import DocfnError, NotFound, PayloadTooLarge, Unavailable, UnsupportedMediaType
from ..core.settings import Settings
from .job_claims import ClaimLost, JobClaim, JobClaims, JobInProgress
from .outcome import Outcome
from .request_log import log_request, request_fields
from .service import DocService
from .storage import (
    JobStatus,
    ObjectMissing,
    ObjectStore,
    StoredObject,
    check_job_id,
    parse_upload_key,
    result_key,
    safe_filename,
    status_key,
    upload_key,
)

log = logging.getLogger("docfn.jobs")

ReportState = Literal["succeeded", "failed", "skipped", "ignored"]
CANCELED = "canceled before it ran"
# Called with a group's job's last status when it has ended (succeeded or failed).
JobEndHook = Callable[[JobStatus], None]


@dataclass(frozen=True)
class ObjectRef:
    """An object named by an event, with its key already URL-decoded by the event view."""

    bucket: str | None
    key: str
    size: int | None = None
    etag: str | None = None


@dataclass
class JobReport:
    """What happened to one object: adapters turn failures into retries (SQS, broker) or errors."""

    key: str
    state: ReportState
    job_id: str | None = None
    task: str | None = None
    reason: str | None = None
    input_sha256: str | None = None
    cached: bool | None = None
    cold: bool | None = None
    error: DocfnError | None = field(default=None, repr=False)

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    @property
    def retryable(self) -> bool:
        """Worth delivering again: storage/cache outages and overload, not bad inputs."""
        return self.failed and (self.error is None or self.error.status >= 500 or self.error.status == 429)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"key": self.key, "state": self.state}
        for name in ("job_id", "task", "reason", "input_sha256", "cached", "cold"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if self.error is not None:
            body["error"] = {"code": self.error.code, "message": self.error.message}
        return body


def _error_dict(exc: DocfnError) -> dict[str, str]:
    return {"code": exc.code, "message": exc.message}


class UploadProcessor:
    """Creates uploads, runs uploaded jobs and answers job status, over one object store."""

    def __init__(self, service: DocService, store: ObjectStore | None, settings: Settings) -> None:
        self.service = service
        self._store = store
        self.settings = settings
        self._claims: JobClaims | None = None
        self.on_job_end: JobEndHook | None = None  # task groups listen (wiring sets it)

    @property
    def claims(self) -> JobClaims:
        """The job claims in the store (the same 503 as every job call when there is no bucket)."""
        if self._claims is None:
            self._claims = JobClaims(self.store, self.settings.job_lease_seconds)
        return self._claims

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            raise Unavailable("asynchronous jobs need an object store; set DOCFN_BUCKET", retry_after=60)
        return self._store

    # -- POST /v1/uploads ------------------------------------------------------------------------

    def create_upload(
        self,
        task: str,
        filename: str,
        content_type: str | None = None,
        options: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        name = safe_filename(filename)
        declared = _media_type(content_type)
        options = {str(k): str(v) for k, v in (options or {}).items()}
        # Validated now, whichever function answers: a bad option fails here (422), not in the job.
        self.service.validate_options(task, options)
        job_id = uuid.uuid4().hex
        key = upload_key(task, job_id, name)
        expires_in = self.settings.upload_url_expiry_seconds
        upload = self.store.presign_upload(key, declared, expires_in)
        queued = JobStatus(job_id=job_id, task=task, state="queued", input_key=key, options=options)
        self.store.put(status_key(job_id), queued.to_json(), "application/json")
        return {
            "job_id": job_id,
            "task": task,
            "key": key,
            "bucket": self.store.bucket,
            "upload": {"method": upload.method, "url": upload.url, "headers": upload.headers},
            "expires_in": expires_in,
            "expires_at": int(time.time()) + expires_in,
            "status_url": f"/v1/jobs/{job_id}",
        }

    # -- jobs given their bytes (MinerU's task API) -----------------------------------------------

    def submit(
        self,
        task: str,
        filename: str,
        data: bytes,
        content_type: str | None,
        options: dict[str, str],
        group: str | None = None,
        *,
        job_id: str | None = None,
    ) -> str:
        """A job for bytes in hand: its queued status, then the input written where an upload lands,
        so the same ObjectCreated event (or the upload watcher) runs it. Returns its id."""
        job_id = job_id or uuid.uuid4().hex
        key = upload_key(task, job_id, safe_filename(filename))
        queued = JobStatus(
            job_id=job_id, task=task, state="queued", input_key=key, options=options, group=group
        )
        self.store.put(status_key(job_id), queued.to_json(), "application/json")
        self.store.put(key, data, content_type or "application/octet-stream")
        return job_id

    def complete_cached(
        self,
        filename: str,
        outcome: Outcome,
        options: dict[str, str],
        group: str | None = None,
        *,
        job_id: str | None = None,
    ) -> str:
        """A job answered from the result cache (its input named by sha256, never sent): its results
        and its succeeded status written at once, no upload, nothing to run. Returns its id."""
        job_id = job_id or uuid.uuid4().hex
        key = upload_key(outcome.task, job_id, safe_filename(filename))
        keys = self._write_results(job_id, key, outcome, uuid.uuid4().hex)
        done = JobStatus(
            job_id=job_id,
            task=outcome.task,
            state="succeeded",
            input_key=key,
            input_sha256=outcome.input_sha256,
            result_keys=keys,
            options=options,
            group=group,
            started_at=time.time(),
        )
        self.store.put(status_key(job_id), done.to_json(), "application/json")
        return job_id

    def cancel(self, job_id: str) -> JobStatus:
        """Stops a job that has not started (its upload event then skips it); a running or ended one
        is left as it is. Returns the job's status after."""
        status = self.current(job_id)
        if status.state != "queued":
            return status
        canceled = status.moved("canceled")
        self.store.put(status_key(job_id), canceled.to_json(), "application/json")
        return canceled

    def result(self, job_id: str) -> dict[str, Any]:
        """A succeeded job's ``result.json``: the body the HTTP API answers for the same request."""
        return dict(json.loads(self.store.get(result_key(job_id, "result.json")).data))

    # -- GET /v1/jobs/{id} -----------------------------------------------------------------------

    def current(self, job_id: str) -> JobStatus:
        """The job's status as it stands: a *running* job whose claim has expired reads failed."""
        check_job_id(job_id)
        raw = self.store.get_optional(status_key(job_id))
        if raw is None:
            raise NotFound(f"no job {job_id!r} (unknown, or expired by the bucket's lifecycle rule)")
        status = JobStatus.from_json(raw)
        if status.state == "running" and not self.claims.alive(job_id):
            # Its instance died or lost the store mid-job: say so instead of "running" forever.
            status = replace(
                status,
                state="failed",
                error={
                    "code": "interrupted",
                    "message": "the job stopped before it finished (its instance went away or lost"
                    " storage); it runs again when its upload event is delivered again",
                },
            )
        return status

    def job(self, job_id: str) -> dict[str, Any]:
        status = self.current(job_id)
        body: dict[str, Any] = {**json.loads(status.to_json()), "bucket": self.store.bucket}
        if status.state == "succeeded":
            # The bucket is private: hand out short-lived links rather than bucket credentials.
            expiry = self.settings.upload_url_expiry_seconds
            body["result_urls"] = {
                key.rsplit("/", 1)[-1]: self.store.presign_download(key, expiry) for key in status.result_keys
            }
        return body

    # -- an ObjectCreated event ------------------------------------------------------------------

    def process(self, ref: ObjectRef, *, request_id: str | None = None, source: str = "event") -> JobReport:
        started = time.perf_counter()
        report = self._process(ref, request_id or uuid.uuid4().hex)
        fields = request_fields(
            request_id=request_id,
            task=report.task,
            started=started,
            error=report.error.code if report.error is not None else None,
            source=source,
            key=ref.key,
            job_id=report.job_id,
            job_state=report.state,
            reason=report.reason,
        )
        if report.state == "ignored":
            log.info("event ignored", extra={"fields": fields})
        elif report.state == "skipped":
            log.info("event skipped", extra={"fields": fields})
        return report

    def _process(self, ref: ObjectRef, request_id: str) -> JobReport:
        upload = parse_upload_key(ref.key)
        if upload is None:
            return JobReport(ref.key, "ignored", reason="not an upload (uploads/<task>/<job_id>/<file>)")
        base = {"job_id": upload.job_id, "task": upload.task}
        if self._store is not None and ref.bucket and ref.bucket != self._store.bucket:
            return JobReport(ref.key, "ignored", reason=f"bucket {ref.bucket} is not this function's", **base)
        if upload.task not in self.service.tasks:
            # Routing sends each task's prefix to its own function; a stray event is not ours to fail.
            log.warning(
                "upload for task %s reached a function serving %s", upload.task, list(self.service.tasks)
            )
            return JobReport(ref.key, "ignored", reason=f"task {upload.task} is not served here", **base)
        try:
            store = self.store
            previous = self._read_status(upload.job_id)
            if ref.size is not None and ref.size > self.settings.max_upload_bytes:
                limit = self.settings.max_upload_bytes
                raise PayloadTooLarge(f"the upload is {ref.size:,} bytes; the job limit is {limit:,} bytes")
            try:
                with self.service.tracer.subsegment("storage_get"):
                    obj = store.get(ref.key, max_bytes=self.settings.max_upload_bytes)
            except ObjectMissing:
                if previous is not None and previous.state == "succeeded" and previous.input_key == ref.key:
                    return JobReport(
                        ref.key, "skipped", reason="input gone; the job already succeeded", **base
                    )
                raise
            sha = hashlib.sha256(obj.data).hexdigest()
            if previous is not None and previous.state == "canceled":
                return JobReport(ref.key, "skipped", reason=CANCELED, input_sha256=sha, **base)
            if previous is not None and previous.state == "succeeded" and previous.input_sha256 == sha:
                return JobReport(
                    ref.key, "skipped", reason="already succeeded for this input", input_sha256=sha, **base
                )
            claim = self.claims.take(upload.job_id, sha)
        except JobInProgress as exc:  # another instance runs it: no status written, retried later
            return JobReport(ref.key, "failed", reason=exc.message, input_sha256=sha, error=exc, **base)
        except DocfnError as exc:
            return self._fail(upload.job_id, upload.task, ref.key, None, exc, None)
        try:
            return self._run_claimed(ref, upload.job_id, upload.task, obj, sha, previous, claim, request_id)
        finally:
            claim.release()

    def _run_claimed(
        self,
        ref: ObjectRef,
        job_id: str,
        task: str,
        obj: StoredObject,
        sha: str,
        previous: JobStatus | None,
        claim: JobClaim,
        request_id: str,
    ) -> JobReport:
        base = {"job_id": job_id, "task": task}
        store = self.store
        try:
            # A racer may have finished between our status read and our claim.
            latest = self._read_status(job_id)
        except DocfnError as exc:
            return self._fail(job_id, task, ref.key, None, exc, None)
        if latest is not None and latest.state == "succeeded" and latest.input_sha256 == sha:
            return JobReport(
                ref.key, "skipped", reason="already succeeded for this input", input_sha256=sha, **base
            )
        if latest is not None and latest.state == "canceled":
            return JobReport(ref.key, "skipped", reason=CANCELED, input_sha256=sha, **base)
        options = previous.options if previous is not None else {}
        running = JobStatus(
            job_id=job_id,
            task=task,
            state="running",
            input_key=ref.key,
            input_sha256=sha,
            options=options,
            group=previous.group if previous is not None else None,
            started_at=time.time(),
        )
        outcome: Outcome | None = None
        try:
            store.put(status_key(job_id), running.to_json(), "application/json")
            outcome = self.service.run(
                task,
                obj.data,
                obj.content_type,
                options,
                max_bytes=self.settings.max_upload_bytes,
                on_page=lambda done, total: claim.check(),  # taken over: stop at the next page
            )
            claim.confirm()  # the result is written only by the instance that still holds the job
            with self.service.tracer.subsegment("storage_put"):
                keys = self._write_results(job_id, ref.key, outcome, request_id)
            # Status last: "succeeded" is only ever visible once every result object exists.
            succeeded = running.moved("succeeded", result_keys=keys)
            store.put(status_key(job_id), succeeded.to_json(), "application/json")
        except ClaimLost as exc:  # the job is another instance's now: its status and result are too
            _log_failed_run(request_id, task, job_id, ref.key, exc, outcome)
            return JobReport(ref.key, "failed", reason=exc.message, input_sha256=sha, error=exc, **base)
        except DocfnError as exc:
            return self._fail(job_id, task, ref.key, running, exc, outcome, request_id)
        except Exception as exc:  # a bug must still leave a readable failed status behind
            log.exception("job %s failed unexpectedly", job_id)
            error = DocfnError(f"internal error: {type(exc).__name__}")
            return self._fail(job_id, task, ref.key, running, error, outcome, request_id)
        log_request(
            request_id=request_id,
            task=task,
            status=200,
            outcome=outcome,
            job_id=job_id,
            input_key=ref.key,
        )
        self._ended(succeeded)
        return JobReport(
            ref.key,
            "succeeded",
            input_sha256=sha,
            cached=outcome.cached,
            cold=outcome.cold,
            **base,
        )

    def _read_status(self, job_id: str) -> JobStatus | None:
        raw = self.store.get_optional(status_key(job_id))
        if raw is None:
            return None
        try:
            return JobStatus.from_json(raw)
        except (ValueError, TypeError):
            return None  # a damaged status is rewritten by this run

    def _write_results(self, job_id: str, input_key: str, outcome: Outcome, request_id: str) -> list[str]:
        body = {"job_id": job_id, "input_key": input_key, **outcome.body(request_id)}
        keys = [result_key(job_id, "result.json")]
        self.store.put(keys[0], json.dumps(body, ensure_ascii=False).encode(), "application/json")
        markdown = outcome.result.get("markdown")
        if isinstance(markdown, str) and markdown:
            keys.append(result_key(job_id, "result.md"))
            text = markdown if markdown.endswith("\n") else markdown + "\n"
            self.store.put(keys[1], text.encode(), "text/markdown; charset=utf-8")
        return keys

    def _fail(
        self,
        job_id: str,
        task: str,
        key: str,
        running: JobStatus | None,
        exc: DocfnError,
        outcome: Outcome | None,
        request_id: str | None = None,
    ) -> JobReport:
        base = running
        if base is None:  # failed before it ran: keep what its queued status knew (options, group)
            try:
                base = self._read_status(job_id)
            except DocfnError:
                base = None
        base = base or JobStatus(job_id=job_id, task=task, state="failed", input_key=key)
        status = base.moved("failed", error=_error_dict(exc), result_keys=[], input_key=key)
        try:
            self.store.put(status_key(job_id), status.to_json(), "application/json")
            self._ended(status)
        except DocfnError as write_error:  # the store is down: the retry will write it
            log.warning("could not record the failure of job %s: %s", job_id, write_error.message)
        _log_failed_run(request_id, task, job_id, key, exc, outcome)
        return JobReport(key, "failed", job_id=job_id, task=task, reason=exc.message, error=exc)

    def _ended(self, status: JobStatus) -> None:
        """Tells the group's listener (its callback may be due); its failure never fails the job."""
        if status.group is None or self.on_job_end is None:
            return
        try:
            self.on_job_end(status)
        except Exception:
            log.exception("the end of job %s (task %s) was not handled", status.job_id, status.group)


def _media_type(content_type: str | None) -> str | None:
    """A declared upload type must be one the tasks read; it is signed into the upload URL."""
    if not content_type:
        return None
    value = content_type.split(";")[0].strip().lower()
    if value not in MEDIA_TYPES.values():
        raise UnsupportedMediaType(
            f"unsupported content_type {value!r}; send one of {sorted(MEDIA_TYPES.values())}"
        )
    return value


def _log_failed_run(
    request_id: str | None, task: str, job_id: str, key: str, exc: DocfnError, outcome: Outcome | None
) -> None:
    """The request line of a job run that ended in ``exc`` (failed, or its claim lost)."""
    log_request(
        request_id=request_id,
        task=task,
        status=exc.status,
        outcome=outcome,
        error=exc.code,
        job_id=job_id,
        input_key=key,
    )
