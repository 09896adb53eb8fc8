"""OpenTelemetry on Lambda: the spans an invocation made reach the collector before the handler
returns (Lambda freezes the environment right after, and a batch would leave minutes later or
never). A stand-in OTLP/HTTP collector on loopback records what arrives; the batch processor's own
schedule is set far beyond the test, so only the handler's flush can have sent them."""

from __future__ import annotations

import importlib
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from docfn.core.settings import get_settings
from docfn_testkit.events import function_url_event
from docfn_testkit.otlp_collector import OtlpCollector
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import free_port


def _context() -> Any:
    return types.SimpleNamespace(
        aws_request_id="req-flush",
        function_name="docfn-ocr",
        function_version="$LATEST",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:docfn-ocr",
        memory_limit_in_mb=3008,
        get_remaining_time_in_millis=lambda: 300000,
    )


@contextmanager
def _lambda_handler(model_store: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str) -> Iterator[Any]:
    """The Lambda handler in this process, with a runtime of its own, tracing to ``endpoint``."""
    for key, value in {
        "DOCFN_TRACING": "otel",
        "DOCFN_TASKS": "ocr",
        "DOCFN_MODEL_STORE": str(model_store),
        "DOCFN_EAGER_LOAD": "0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "600000",  # the batch thread alone would wait 10 minutes
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    handler = importlib.import_module("docfn.adapters.aws_lambda.handler")
    monkeypatch.setattr(handler, "_runtime", None)
    try:
        yield handler
    finally:
        tracer = handler._runtime.service.tracer if handler._runtime is not None else None
        if tracer is not None and not tracer.failed:  # while the collector listens: no exit retries
            tracer.inner.shutdown()
        get_settings.cache_clear()


def _invoke(handler: Any) -> dict[str, Any]:
    event = function_url_event(
        "POST", "/v1/ocr", SAMPLE_PAGE.read_bytes(), content_type="image/png", base64_body=True
    )
    return handler.handler(event, _context())


def test_spans_reach_the_collector_before_the_handler_returns(
    model_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        OtlpCollector() as collector,
        _lambda_handler(model_store, monkeypatch, collector.endpoint) as handler,
    ):
        response = _invoke(handler)
        assert response["statusCode"] == 200, response.get("body")
        names = collector.span_names()  # read the moment the handler returned: no waiting
    assert {"docfn-ocr", "cache_get", "model_load", "inference", "cache_set"} <= set(names), names


def test_an_unreachable_collector_costs_one_bounded_wait(
    model_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    with _lambda_handler(model_store, monkeypatch, nobody) as handler:
        took = []
        for _ in range(2):
            started = time.perf_counter()
            assert _invoke(handler)["statusCode"] == 200
            took.append(time.perf_counter() - started)
        # The first flush waits at most TRACE_FLUSH_SECONDS, then the tracer steps aside: the second
        # invocation (warm, a cache hit) waits for nothing.
        assert handler._runtime.service.tracer.failed
    assert took[0] < handler.TRACE_FLUSH_SECONDS + 30 and took[1] < 1.0, took
