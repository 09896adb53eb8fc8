"""The event-source contract, after Mangum's handlers: one class per source with the same protocol.

``infer(event)`` says "this event is mine"; ``handle(event, invocation)`` does the work and answers in
the source's own terms (an HTTP response, SQS's ``batchItemFailures``, an exception that makes Lambda
retry). Sources that announce uploaded objects also say which objects (``object_refs``), which is
all ``POST /v1/events`` needs of them; unwrapping envelopes (an SQS body, a CloudEvent's data) goes
back through the registry, handed in as ``unwrap``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from ...service.upload_jobs import JobReport, ObjectRef, UploadProcessor

# Payload (dict, JSON text or bytes) -> the objects it announces; raises BadInput for other events.
Unwrap = Callable[[Any], list[ObjectRef]]


@dataclass
class Invocation:
    """What a source may use to answer one event."""

    request_id: str | None
    cold: bool
    jobs: UploadProcessor
    unwrap: Unwrap
    context: Any = None
    # The ASGI app behind Mangum, built on the first HTTP event only: (event, context) -> response.
    http: Callable[[Mapping[str, Any], Any], dict[str, Any]] | None = None


class EventSource(Protocol):
    name: ClassVar[str]

    def infer(self, event: Mapping[str, Any]) -> bool: ...

    def handle(self, event: Mapping[str, Any], invocation: Invocation) -> Any: ...


class ObjectEventSource(Protocol):
    """A source whose events announce created objects (S3, EventBridge, CloudEvents)."""

    name: ClassVar[str]

    def infer(self, event: Mapping[str, Any]) -> bool: ...

    def object_refs(self, event: Mapping[str, Any], unwrap: Unwrap) -> list[ObjectRef]: ...

    def handle(self, event: Mapping[str, Any], invocation: Invocation) -> Any: ...


class JobsFailed(Exception):
    """Raised for directly invoked (asynchronous) events with failed objects: Lambda then retries
    the invocation (twice) and sends it to the function's dead-letter queue after that."""


def run_jobs(refs: list[ObjectRef], invocation: Invocation, source: str) -> list[JobReport]:
    return [invocation.jobs.process(ref, request_id=invocation.request_id, source=source) for ref in refs]


def answer_direct(reports: list[JobReport], invocation: Invocation) -> dict[str, Any]:
    """The answer to a direct (asynchronous) invocation: the records, or :class:`JobsFailed`."""
    failed = [report for report in reports if report.failed]
    if failed:
        summary = "; ".join(f"{r.key}: {r.error.code if r.error else 'failed'} ({r.reason})" for r in failed)
        raise JobsFailed(f"{len(failed)} of {len(reports)} object(s) failed: {summary}")
    return {"cold_start": invocation.cold, "records": [r.to_dict() for r in reports]}


class DirectObjectEvents(ABC):
    """``handle`` for object sources invoked directly: process every object, one answer."""

    name: ClassVar[str] = "event"

    @abstractmethod
    def infer(self, event: Mapping[str, Any]) -> bool: ...

    @abstractmethod
    def object_refs(self, event: Mapping[str, Any], unwrap: Unwrap) -> list[ObjectRef]: ...

    def handle(self, event: Mapping[str, Any], invocation: Invocation) -> Any:
        refs = self.object_refs(event, invocation.unwrap)
        return answer_direct(run_jobs(refs, invocation, self.name), invocation)
