"""OpenTelemetry spans around cache, model load, inference and storage (``DOCFN_TRACING=otel``).

The same :class:`docfn.core.tracing.Tracer` seam as X-Ray: each request is a SERVER span with the
service's spans inside it. Spans go by OTLP/HTTP to a collector, the AWS Distro for OpenTelemetry
(ADOT) collector included (Lambda layer or Knative sidecar/daemon), at the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (default
``http://localhost:4318``). The SDK is imported when the tracer is made, which only happens when
tracing is set to ``otel``; the global tracer provider is left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
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

    def shutdown(self) -> None:
        """Flush what is buffered (a process about to exit)."""
        self.provider.shutdown()


def _attributes(annotations: dict[str, str]) -> dict[str, str]:
    return {f"docfn.{key}": str(value) for key, value in annotations.items()}
