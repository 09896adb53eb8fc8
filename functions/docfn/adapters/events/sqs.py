"""SQS batches whose bodies announce uploads: S3 notifications (S3 -> SQS), EventBridge events
(S3 -> EventBridge -> SQS) or S3's test event.

Partial batch failure, after Powertools' BatchProcessor: every message is tried; the answer lists the
failed ones only (``batchItemFailures``, with ``ReportBatchItemFailures`` on the event source
mapping), so SQS retries just those. An unreadable body is a failure too, so it ends in the queue's
dead-letter queue instead of vanishing. (Standard queues: order is moot.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from ...core.errors import DocfnError
from ...service.upload_jobs import JobReport
from .contract import Invocation, run_jobs
from .views import DictView, RecordsEvent

log = logging.getLogger("docfn.events")


class SqsRecord(DictView):
    @property
    def message_id(self) -> str:
        return str(self._data["messageId"])

    @property
    def body(self) -> str:
        return str(self._data.get("body", ""))


class SqsEvent(RecordsEvent):
    EVENT_SOURCE = "aws:sqs"

    @property
    def records(self) -> Iterator[SqsRecord]:
        for record in self.raw_records():
            yield SqsRecord(record)


class SqsBatch:
    name = "sqs"

    def infer(self, event: Mapping[str, Any]) -> bool:
        return SqsEvent.matches(event)

    def handle(self, event: Mapping[str, Any], invocation: Invocation) -> Any:
        failures: list[dict[str, str]] = []
        for record in SqsEvent(event).records:
            try:
                reports = run_jobs(invocation.unwrap(record.body), invocation, self.name)
            except DocfnError as exc:
                log.warning("SQS message %s is not an upload event: %s", record.message_id, exc.message)
                reports = [JobReport(record.message_id, "failed", reason=exc.message, error=exc)]
            if any(report.failed for report in reports):
                failures.append({"itemIdentifier": record.message_id})
        return {"batchItemFailures": failures}
