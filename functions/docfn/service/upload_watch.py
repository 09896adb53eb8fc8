"""Uploads without events: polls the bucket's ``uploads/`` prefix and runs each new upload.

In the cloud an ObjectCreated event runs an upload (S3 → Lambda, or the Knative broker). A local S3
server (moto, MinIO without notifications) announces nothing, so ``docfn serve`` with
``DOCFN_WATCH_UPLOADS_SECONDS`` set looks for itself: every object under ``uploads/<task>/`` not
seen yet goes through the same :meth:`UploadProcessor.process` an event would reach. Re-running
one is harmless (the processor skips jobs that already succeeded for the same bytes), so a listing
that repeats an object, or a restart, costs a read, not a second result.
"""

from __future__ import annotations

import logging
import threading
import uuid

from ..core.errors import DocfnError
from .storage import UPLOADS_PREFIX, parse_upload_key
from .upload_jobs import JobReport, ObjectRef, UploadProcessor

log = logging.getLogger("docfn.jobs")


class UploadWatcher:
    def __init__(self, processor: UploadProcessor, interval_seconds: float) -> None:
        self.processor = processor
        self.interval_seconds = interval_seconds
        self._done: set[tuple[str, str | None]] = set()  # (key, etag) handled for good
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> list[JobReport]:
        """Runs every upload not handled yet; failures worth retrying are tried on the next poll."""
        store = self.processor.store
        reports = []
        for listed in store.list_objects(UPLOADS_PREFIX):
            seen = (listed.key, listed.etag)
            if seen in self._done:
                continue
            upload = parse_upload_key(listed.key)
            if upload is None or upload.task not in self.processor.service.tasks:
                self._done.add(seen)  # not an upload this instance runs: never ours to retry
                continue
            ref = ObjectRef(store.bucket, listed.key, listed.size, listed.etag)
            report = self.processor.process(ref, request_id=uuid.uuid4().hex, source="watch")
            if not report.retryable:
                self._done.add(seen)
            reports.append(report)
        return reports

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="docfn-upload-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except DocfnError as exc:  # no bucket, storage down: say so, keep watching
                log.warning("polling the uploads prefix failed: %s", exc.message)
            except Exception:  # a bug: its traceback, and keep watching
                log.exception("polling the uploads prefix failed")
            self._stop.wait(self.interval_seconds)
