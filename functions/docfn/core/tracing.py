"""The tracing interface the service records into: named spans around cache, model load, inference
and storage. Off by default (:class:`NoTracer`); the X-Ray implementation lives with the other cloud
bindings (``docfn.cloud.xray``, ``docfn.cloud.otel``) and is chosen when the service is wired,
inside ``docfn.core.failsafe_tracing.FailSafeTracer``: tracing never fails a request."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Protocol


class Tracer(Protocol):
    def request(self, name: str, **annotations: str) -> AbstractContextManager[None]:
        """The span of one request (a segment, or a subsegment where the platform owns the segment)."""
        ...

    def subsegment(self, name: str, **annotations: str) -> AbstractContextManager[None]:
        """A span inside the current request."""
        ...

    def flush(self, timeout_seconds: float) -> None:
        """Send what is buffered, waiting at most ``timeout_seconds`` (a Lambda invocation about to
        return: the environment may be frozen right after, with spans still in a batch)."""
        ...


class NoTracer:
    """Every span a no-op: no SDK imported, nothing recorded."""

    def request(self, name: str, **annotations: str) -> AbstractContextManager[None]:
        return nullcontext()

    def subsegment(self, name: str, **annotations: str) -> AbstractContextManager[None]:
        return nullcontext()

    def flush(self, timeout_seconds: float) -> None:
        return None
