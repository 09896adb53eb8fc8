"""The AWS Lambda entry point: one handler for every event source a docfn function receives.

After Mangum's adapter: one small class per event source with the same protocol, ``infer(event)``
("this event is mine") and ``handle(event, context)``; :func:`handler` walks the list and the first
that claims the event answers it. Sources:

- :class:`FunctionUrl`: function URL / API Gateway HTTP (payload 2.0) through Mangum -> the ASGI app;
- :class:`SqsBatch`: S3 (or EventBridge) upload events through SQS; answers ``batchItemFailures``
  naming only the failed messages, so SQS retries just those (``ReportBatchItemFailures``);
- :class:`S3Notification`: S3 notifications invoking the function directly (asynchronously);
- :class:`EventBridgeS3`: EventBridge ``Object Created`` invoking the function directly.

Init stays light: importing this module imports code (FastAPI, Mangum, the core) and nothing else;
the app, the cache client and the boto3 client are built on the first invocation, and model packs
load on first use. Whether an invocation was the container's first (cold) is in the response header
``X-Docfn-Lambda-Cold``, the event responses' ``cold_start``, and the per-invocation log line.
"""

from __future__ import annotations

import time

_IMPORT_START = time.perf_counter()

import logging  # noqa: E402
import threading  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, ClassVar, Protocol  # noqa: E402

from mangum import Mangum  # noqa: E402

from ..core.errors import DocfnError  # noqa: E402
from ..core.jobs import JobReport, ObjectRef, UploadProcessor  # noqa: E402
from ..core.settings import get_settings  # noqa: E402
from . import http  # noqa: E402
from .events import EventBridgeObjectCreated, S3Event, SqsEvent, object_refs  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _IMPORT_START
log = logging.getLogger("docfn.lambda")


@dataclass
class Runtime:
    """What lives for the container's lifetime: the app (and its service, cache, store)."""

    mangum: Mangum
    jobs: UploadProcessor
    invocations: int = 0


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        with _runtime_lock:
            if _runtime is None:
                app = http.create_app(get_settings())
                # lifespan="off": Mangum would run the app's startup/shutdown on every invocation.
                _runtime = Runtime(Mangum(app, lifespan="off"), app.state.jobs)
    return _runtime


class JobsFailed(Exception):
    """Raised for directly invoked (asynchronous) events with failed objects: Lambda then retries
    the invocation (twice) and sends it to the function's dead-letter queue after that."""


class EventSource(Protocol):
    name: ClassVar[str]

    @staticmethod
    def infer(event: Mapping[str, Any]) -> bool: ...

    def handle(self, event: Mapping[str, Any], context: Any) -> Any: ...


class FunctionUrl:
    name = "http"

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    @staticmethod
    def infer(event: Mapping[str, Any]) -> bool:
        return "requestContext" in event and ("http" in event["requestContext"] or "httpMethod" in event)

    def handle(self, event: Mapping[str, Any], context: Any) -> Any:
        headers = dict(event.get("headers") or {})
        # Lambda's request id becomes docfn's, so the response and the logs name the same request.
        if "x-request-id" not in {name.lower() for name in headers}:
            headers["x-request-id"] = getattr(context, "aws_request_id", None) or ""
        response = self.rt.mangum({**event, "headers": headers}, context)
        response.setdefault("headers", {})["x-docfn-lambda-cold"] = "1" if self.rt.invocations == 1 else "0"
        return response


class _ObjectEvents:
    """Shared by the sources that carry upload notifications."""

    name: ClassVar[str] = "event"

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def handle(self, event: Mapping[str, Any], context: Any) -> Any:
        """Direct invocations (S3, EventBridge): every object in the event, one answer."""
        return self.answer(self.process(object_refs(event), context))

    def process(self, refs: list[ObjectRef], context: Any) -> list[JobReport]:
        request_id = getattr(context, "aws_request_id", None)
        return [self.rt.jobs.process(ref, request_id=request_id, source=self.name) for ref in refs]

    def answer(self, reports: list[JobReport]) -> dict[str, Any]:
        failed = [report for report in reports if report.failed]
        if failed:
            summary = "; ".join(
                f"{r.key}: {r.error.code if r.error else 'failed'} ({r.reason})" for r in failed
            )
            raise JobsFailed(f"{len(failed)} of {len(reports)} object(s) failed: {summary}")
        return {"cold_start": self.rt.invocations == 1, "records": [r.to_dict() for r in reports]}


class S3Notification(_ObjectEvents):
    name = "s3"

    @staticmethod
    def infer(event: Mapping[str, Any]) -> bool:
        return S3Event.matches(event)


class EventBridgeS3(_ObjectEvents):
    name = "eventbridge"

    @staticmethod
    def infer(event: Mapping[str, Any]) -> bool:
        return EventBridgeObjectCreated.matches(event)


class SqsBatch(_ObjectEvents):
    """Partial batch failure, after Powertools' BatchProcessor: every message is tried; the answer
    lists the failed ones only. A message body may be an S3 notification (S3 -> SQS), an EventBridge
    event (S3 -> EventBridge -> SQS) or S3's test event; an unreadable body is a failure too, so it
    ends in the queue's dead-letter queue instead of vanishing. (Standard queues: order is moot.)"""

    name = "sqs"

    @staticmethod
    def infer(event: Mapping[str, Any]) -> bool:
        return SqsEvent.matches(event)

    def handle(self, event: Mapping[str, Any], context: Any) -> Any:
        failures: list[dict[str, str]] = []
        for record in SqsEvent(event).records:
            try:
                reports = self.process(object_refs(record.body), context)
            except DocfnError as exc:
                log.warning("SQS message %s is not an upload event: %s", record.message_id, exc.message)
                reports = [JobReport(record.message_id, "failed", reason=exc.message, error=exc)]
            if any(report.failed for report in reports):
                failures.append({"itemIdentifier": record.message_id})
        return {"batchItemFailures": failures}


# Order matters only for overlapping shapes: event sources first, HTTP (Mangum) last.
SOURCES: list[type[Any]] = [SqsBatch, S3Notification, EventBridgeS3, FunctionUrl]


def handler(event: Mapping[str, Any], context: Any) -> Any:
    """``docfn.lambda_handler.handler``: the image's CMD."""
    started = time.perf_counter()
    rt = runtime()
    rt.invocations += 1
    cold = rt.invocations == 1
    source_cls = next((cls for cls in SOURCES if isinstance(event, Mapping) and cls.infer(event)), None)
    fields: dict[str, Any] = {
        "aws_request_id": getattr(context, "aws_request_id", None),
        "source": source_cls.name if source_cls else "unknown",
        "cold_start": cold,
    }
    if cold:
        fields["init_import_ms"] = round(IMPORT_SECONDS * 1000, 1)
    try:
        if source_cls is None:
            raise ValueError("unsupported event: not a function URL request, S3, SQS or EventBridge S3 event")
        result = source_cls(rt).handle(event, context)
        if isinstance(result, dict):
            if "statusCode" in result:
                fields["status"] = result["statusCode"]
            if "batchItemFailures" in result:
                fields["failed_messages"] = len(result["batchItemFailures"])
        return result
    except Exception as exc:
        fields["error"] = type(exc).__name__
        raise
    finally:
        fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
        log.info("invocation", extra={"fields": fields})
