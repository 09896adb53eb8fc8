"""The object store behind asynchronous jobs: the bucket layout, job status, and an S3 implementation.

Layout (the Terraform lifecycle rules and IAM policies assume exactly these prefixes):

    uploads/<task>/<job_id>/<filename>   inputs; an ObjectCreated event here runs <task>
    results/<job_id>/result.json         the task result (the same body the HTTP API answers)
    results/<job_id>/result.md           Markdown, when the task renders Markdown (parse, table)
    results/<job_id>/status.json         job status; always written last
    results/<job_id>/claim.json          while a job runs: which instance runs it, and until when
    results/<task_id>/task.json          a task group (MinerU's task API): its files' jobs, options
    results/<task_id>/callback.json      the group's callback, claimed by the instance that sends it

The interface knows no cloud; ``docfn.cloud.s3_objects.S3ObjectStore`` speaks S3 (AWS, MinIO, moto).
Every storage failure surfaces as :class:`Unavailable` (503) so callers degrade instead of crashing;
a missing object is :class:`ObjectMissing` (404) and a key the role may not access ``Forbidden`` (403).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from ..core.errors import BadInput, NotFound
from ..core.settings import ALL_TASKS

UPLOADS_PREFIX = "uploads/"
RESULTS_PREFIX = "results/"
# Job ids are path segments we generate (uuid4 hex); anything else in an event key is refused.
JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")

# canceled: a queued job its task's DELETE stopped before it ran (its upload event then skips it).
JobState = Literal["queued", "running", "succeeded", "failed", "canceled"]


class ObjectMissing(NotFound):
    """The object named by an event or a job is not in the bucket (deleted, expired, never uploaded)."""


@dataclass(frozen=True)
class UploadKey:
    """``uploads/<task>/<job_id>/<filename>`` taken apart."""

    task: str
    job_id: str
    filename: str

    @property
    def key(self) -> str:
        return upload_key(self.task, self.job_id, self.filename)


def upload_key(task: str, job_id: str, filename: str) -> str:
    return f"{UPLOADS_PREFIX}{task}/{job_id}/{filename}"


def parse_upload_key(key: str) -> UploadKey | None:
    """The upload a (decoded) key names, or None for anything else: results/, models/, stray keys."""
    if not key.startswith(UPLOADS_PREFIX):
        return None
    parts = key[len(UPLOADS_PREFIX) :].split("/", 2)
    if len(parts) != 3:
        return None
    task, job_id, filename = parts
    if task not in ALL_TASKS or not JOB_ID_PATTERN.match(job_id) or not filename or "/" in filename:
        return None
    return UploadKey(task, job_id, filename)


def result_key(job_id: str, name: str) -> str:
    return f"{RESULTS_PREFIX}{job_id}/{name}"


def status_key(job_id: str) -> str:
    return result_key(job_id, "status.json")


def claim_key(job_id: str) -> str:
    return result_key(job_id, "claim.json")


def group_key(task_id: str) -> str:
    return result_key(task_id, "task.json")


def callback_key(task_id: str) -> str:
    return result_key(task_id, "callback.json")


def check_job_id(job_id: str) -> str:
    if not JOB_ID_PATTERN.match(job_id):
        raise NotFound(f"no job {job_id!r}")
    return job_id


def safe_filename(name: str) -> str:
    """A client's file name as the last key segment: no directories, no control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or base in {".", ".."} or len(base.encode()) > 255 or any(ord(c) < 32 for c in base):
        raise BadInput(f"filename {name!r} is not usable; send a plain file name such as page.pdf")
    return base


@dataclass
class JobStatus:
    """``results/<job_id>/status.json``: what ``GET /v1/jobs/{id}`` answers."""

    job_id: str
    task: str
    state: JobState
    input_key: str
    input_sha256: str | None = None
    result_keys: list[str] = field(default_factory=list)
    error: dict[str, str] | None = None
    updated_at: float = field(default_factory=time.time)
    # Task options given to POST /v1/uploads, applied when the upload's event runs the job.
    options: dict[str, str] = field(default_factory=dict)
    # The task group (MinerU's task API: several files under one task id) the job belongs to.
    group: str | None = None
    started_at: float | None = None  # when it began to run (kept by later statuses)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> JobStatus:
        data = json.loads(raw)
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    def moved(self, state: JobState, **changes: Any) -> JobStatus:
        """A copy in ``state`` with a fresh timestamp (statuses are replaced, never edited in place)."""
        values = {**asdict(self), **changes, "state": state, "updated_at": time.time()}
        return JobStatus(**values)


@dataclass(frozen=True)
class StoredObject:
    key: str
    data: bytes
    content_type: str | None
    etag: str | None


@dataclass(frozen=True)
class ListedObject:
    """An object a listing names, as an event would announce it."""

    key: str
    size: int
    etag: str | None


@dataclass(frozen=True)
class PresignedUpload:
    """How a client uploads: ``method`` to ``url`` with exactly ``headers`` (they are signed)."""

    method: str
    url: str
    headers: dict[str, str]
    expires_in: int


class ObjectStore(Protocol):
    """What jobs need from a bucket. Implementations raise :class:`ObjectMissing`, ``Forbidden`` or
    :class:`Unavailable` (never a vendor exception)."""

    bucket: str

    def get(self, key: str, *, max_bytes: int | None = None) -> StoredObject: ...

    def get_optional(self, key: str) -> bytes | None: ...

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def put_new(self, key: str, data: bytes, content_type: str) -> str | None:
        """Create ``key`` only if it does not exist (atomically): its ETag, or None if it already does."""
        ...

    def replace(self, key: str, data: bytes, content_type: str, etag: str) -> str | None:
        """Overwrite ``key`` only if it is still the version ``etag`` (atomically): the new version's
        ETag, or None when it has changed (another writer got there first)."""
        ...

    def delete(self, key: str) -> None: ...

    def presign_upload(self, key: str, content_type: str | None, expires_in: int) -> PresignedUpload: ...

    def presign_download(self, key: str, expires_in: int) -> str: ...

    def list_objects(self, prefix: str) -> list[ListedObject]: ...
