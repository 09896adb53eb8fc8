"""Task groups: several files' jobs under one task id (MinerU 4's task API, on docfn's job store).

Each file is one job of the upload-job store, run by its upload's event like any upload (S3 → Lambda,
the Knative broker, ``docfn serve``'s upload watcher), or answered at once from the result cache when
the caller named the file by its sha256 and a result for it is cached. The group's record
(``results/<task_id>/task.json``) lists the jobs with the caller's options, its callback and whether
it was canceled; the group's state is read from its jobs' statuses when asked, so there is no counter
to keep in step across instances. When the last job of a group ends, its callback is sent once: the
instance that ends it claims ``callback.json`` first (a conditional create), so a job run twice, or
two jobs ending together on two instances, send it once.

No HTTP here: how a group reads in MinerU's shape and how its callback is delivered are the adapter's
(:data:`Notifier`).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..core.errors import Conflict, NotFound
from .outcome import Outcome
from .storage import JobStatus, ObjectStore, callback_key, check_job_id, group_key
from .upload_jobs import UploadProcessor

log = logging.getLogger("docfn.jobs")

# MinerU's task states: partial is some files completed and some failed.
GroupState = Literal["queued", "running", "completed", "partial", "failed", "canceled"]
TERMINAL: frozenset[str] = frozenset({"completed", "partial", "failed", "canceled"})
_ENDED_JOB_STATES = frozenset({"succeeded", "failed", "canceled"})


@dataclass(frozen=True)
class Callback:
    """Where the group's final status is POSTed, and the secret its body is signed with."""

    url: str
    secret: str | None = None


@dataclass(frozen=True)
class GroupFile:
    job_id: str
    name: str
    page_range: str  # as the caller gave it ("" = every page)


@dataclass
class GroupRecord:
    """``results/<task_id>/task.json``."""

    task_id: str
    task: str
    created_at: float
    files: list[GroupFile]
    meta: dict[str, Any] = field(default_factory=dict)  # the adapter's (MinerU's tier, formats, …)
    callback: Callback | None = None
    canceled_at: float | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> GroupRecord:
        data = json.loads(raw)
        callback = data.get("callback")
        return cls(
            task_id=data["task_id"],
            task=data["task"],
            created_at=float(data["created_at"]),
            files=[GroupFile(**item) for item in data["files"]],
            meta=dict(data.get("meta") or {}),
            callback=Callback(**callback) if callback else None,
            canceled_at=data.get("canceled_at"),
        )


@dataclass(frozen=True)
class GroupInput:
    """One file of a new group: its bytes, or the cached outcome of the file it names by sha256."""

    name: str
    options: dict[str, str]
    page_range: str = ""
    data: bytes | None = None
    content_type: str | None = None
    cached: Outcome | None = None


@dataclass(frozen=True)
class GroupView:
    """A group as it stands: its record and its jobs' statuses, in file order."""

    record: GroupRecord
    jobs: list[JobStatus]

    @property
    def state(self) -> GroupState:
        if self.record.canceled_at is not None:
            return "canceled"
        states = [job.state for job in self.jobs]
        if all(state == "queued" for state in states):
            return "queued"
        if not all(state in _ENDED_JOB_STATES for state in states):
            return "running"
        if all(state == "succeeded" for state in states):
            return "completed"
        return "partial" if "succeeded" in states else "failed"

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def started_at(self) -> float | None:
        starts = [job.started_at for job in self.jobs if job.started_at is not None]
        return min(starts) if starts else None

    @property
    def finished_at(self) -> float | None:
        if not self.terminal:
            return None
        if self.record.canceled_at is not None:
            return self.record.canceled_at
        return max(job.updated_at for job in self.jobs)


# Told when a group with a callback has ended (its final view); it delivers the callback.
Notifier = Callable[[GroupView], None]


class TaskGroups:
    def __init__(self, processor: UploadProcessor, notifier: Notifier | None = None) -> None:
        self.processor = processor
        self.notifier = notifier

    @property
    def store(self) -> ObjectStore:
        return self.processor.store

    def create(
        self,
        task: str,
        inputs: list[GroupInput],
        meta: dict[str, Any] | None = None,
        callback: Callback | None = None,
    ) -> GroupView:
        """A new group of ``inputs``: the record first (a job that ends at once finds its group), then
        each file's job. Files named by a cached sha256 are answered now; the others run by their
        upload's event."""
        task_id = uuid.uuid4().hex
        record = GroupRecord(task_id, task, time.time(), [], dict(meta or {}), callback)
        # Named before any job exists: the record lists them before their events can run them.
        job_ids = [uuid.uuid4().hex for _ in inputs]
        pairs = list(zip(job_ids, inputs, strict=True))
        record.files = [GroupFile(job_id, item.name, item.page_range) for job_id, item in pairs]
        self.store.put(group_key(task_id), record.to_json(), "application/json")
        for job_id, item in pairs:
            if item.cached is not None:
                self.processor.complete_cached(item.name, item.cached, item.options, task_id, job_id=job_id)
            else:
                assert item.data is not None
                self.processor.submit(
                    task, item.name, item.data, item.content_type, item.options, task_id, job_id=job_id
                )
        view = self.view(task_id)
        self._notify_if_ended(view)  # every file came from the cache: ended already
        return view

    def view(self, task_id: str) -> GroupView:
        check_job_id(task_id)
        raw = self.store.get_optional(group_key(task_id))
        if raw is None:
            raise NotFound(f"no task {task_id!r} (unknown, or expired by the bucket's lifecycle rule)")
        record = GroupRecord.from_json(raw)
        return GroupView(record, [self.processor.current(file.job_id) for file in record.files])

    def cancel(self, task_id: str) -> GroupView:
        """Cancels a group that has not ended: its queued jobs never run; a running job finishes its
        work, which the group no longer reports. An ended group: :class:`Conflict` (409)."""
        view = self.view(task_id)
        if view.terminal:
            raise Conflict(f"task {task_id} is {view.state}; only a queued or running task can be canceled")
        view.record.canceled_at = time.time()
        self.store.put(group_key(task_id), view.record.to_json(), "application/json")
        for job in view.jobs:
            self.processor.cancel(job.job_id)
        return self.view(task_id)

    def result(self, job_id: str) -> dict[str, Any]:
        return self.processor.result(job_id)

    def job_ended(self, status: JobStatus) -> None:
        """A job of a group has ended (``UploadProcessor.on_job_end``): the group's callback may be due."""
        if status.group is None:
            return
        self._notify_if_ended(self.view(status.group))

    def _notify_if_ended(self, view: GroupView) -> None:
        callback = view.record.callback
        if callback is None or self.notifier is None or not view.terminal or view.state == "canceled":
            return
        claim = json.dumps({"claimed_at": time.time()}).encode()
        if not self.store.put_new(callback_key(view.record.task_id), claim, "application/json"):
            return  # another instance (or an earlier run of this job) sent it
        self.notifier(view)
