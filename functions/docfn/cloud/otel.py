"""OpenTelemetry spans around cache, model load, inference and storage (``DOCFN_TRACING=otel``).

The same :class:`docfn.core.tracing.Tracer` seam as X-Ray: each request is a SERVER span with the
service's spans inside it. Spans go by OTLP/HTTP to a collector, the AWS Distro for OpenTelemetry
(ADOT) collector included (Lambda layer or Knative sidecar/daemon), at the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (default
``http://localhost:4318``). The SDK is imported when the tracer is made, which only happens when
tracing is set to ``otel``; the global tracer provider is left alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class OTelTracer:
    """:class:`docfn.core.tracing.Tracer` over the OpenTelemetry SDK."""

    def __init__(self, service: str = "docfn", *, exporter: Any = None, batch: bool = True) -> None:
        """``exporter`` defaults to OTLP over HTTP; ``batch=False`` exports each span as it ends
        (tests, short-lived processes)."""
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        self._exporter = _Watched(exporter)
        exporter = self._exporter
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        self.provider.add_span_processor(processor)
        self._tracer = self.provider.get_tracer("docfn")

    @contextmanager
    def request(self, name: str, **annotations: str) -> Iterator[None]:
        from opentelemetry.trace import SpanKind

        with self._tracer.start_as_current_span(
            name, kind=SpanKind.SERVER, attributes=_attributes(annotations)
        ):
            yield

    @contextmanager
    def subsegment(self, name: str, **annotations: str) -> Iterator[None]:
        with self._tracer.start_as_current_span(name, attributes=_attributes(annotations)):
            yield

    def flush(self, timeout_seconds: float) -> None:
        """Export the batched spans now, waiting at most ``timeout_seconds``: a Lambda invocation's
        spans must leave before it returns (the environment is frozen after, maybe for good).

        The SDK's ``force_flush`` exports in the calling thread and its exporter retries for up to
        its own timeout (10 s), whatever timeout it is given: it runs in a thread of its own, waited
        for at most ``timeout_seconds``. Raises TimeoutError when it is not done by then, and
        ConnectionError when the collector refused the spans, so that the fail-safe tracer steps
        aside rather than make every later invocation wait as long."""
        flushing = threading.Thread(
            target=self.provider.force_flush,
            kwargs={"timeout_millis": max(1, int(timeout_seconds * 1000))},
            name="docfn-otel-flush",
            daemon=True,
        )
        flushing.start()
        flushing.join(timeout_seconds)
        if flushing.is_alive():
            raise TimeoutError(f"spans not exported within {timeout_seconds:g} s")
        if self._exporter.failed:
            raise ConnectionError("the collector did not accept the spans")

    def shutdown(self) -> None:
        """Flush what is buffered (a process about to exit)."""
        self.provider.shutdown()


def _attributes(annotations: dict[str, str]) -> dict[str, str]:
    return {f"docfn.{key}": str(value) for key, value in annotations.items()}


class _Watched:
    """A span exporter that remembers whether its last export failed (what ``flush`` reports)."""

    def __init__(self, exporter: Any) -> None:
        self.exporter = exporter
        self.failed = False

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        result = self.exporter.export(spans)
        self.failed = result is not SpanExportResult.SUCCESS
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.exporter.force_flush(timeout_millis))
