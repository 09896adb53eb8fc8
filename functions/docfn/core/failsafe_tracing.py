"""A tracer that can never fail or slow a request: the first error from the tracing SDK (an SDK
that cannot start, a span it cannot open or close) is logged once, and from then on the tracer
steps aside and every span is a no-op.

Why: tracing is an aid, not a dependency. The X-Ray SDK's sampler builds a botocore ``xray`` client
when it is imported, and an image without that service model answered every request 500 when
tracing was on off Lambda. Errors of the traced code itself pass through untouched.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from .tracing import Tracer

log = logging.getLogger("docfn.tracing")


class FailSafeTracer:
    """:class:`docfn.core.tracing.Tracer` around another one, which it drops on its first error."""

    def __init__(self, inner: Tracer, kind: str) -> None:
        self.inner = inner
        self.kind = kind
        self.failed = False
        self._lock = threading.Lock()

    def request(self, name: str, **annotations: str) -> AbstractContextManager[None]:
        return self._span(lambda: self.inner.request(name, **annotations))

    def subsegment(self, name: str, **annotations: str) -> AbstractContextManager[None]:
        return self._span(lambda: self.inner.subsegment(name, **annotations))

    def flush(self, timeout_seconds: float) -> None:
        if self.failed:
            return
        try:
            self.inner.flush(timeout_seconds)
        except Exception as exc:  # a collector that is down must not fail the invocation
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            first, self.failed = not self.failed, True
        if first:
            log.warning(
                "tracing (%s) failed and is off for the life of this process: %s: %s",
                self.kind,
                type(exc).__name__,
                exc,
            )

    @contextmanager
    def _span(self, opener: Callable[[], AbstractContextManager[None]]) -> Iterator[None]:
        if self.failed:
            yield
            return
        try:
            span = opener()
            span.__enter__()
        except Exception as exc:  # the SDK could not open the span: trace nothing, serve the request
            self._fail(exc)
            yield
            return
        try:
            yield
        except BaseException as raised:
            try:
                span.__exit__(type(raised), raised, raised.__traceback__)
            except BaseException as closing:
                if closing is not raised and isinstance(closing, Exception):
                    self._fail(closing)  # the SDK's own error: the request's error is what is raised
            raise
        try:
            span.__exit__(None, None, None)
        except Exception as exc:  # closing the span failed: the request has already succeeded
            self._fail(exc)


def start_tracer(kind: str, make: Callable[[], Tracer]) -> Tracer | None:
    """``make()`` wrapped in a :class:`FailSafeTracer`; None (no tracing) when it cannot be made."""
    try:
        tracer = make()
    except Exception as exc:
        log.warning("tracing (%s) could not start and is off: %s: %s", kind, type(exc).__name__, exc)
        return None
    return FailSafeTracer(tracer, kind)
