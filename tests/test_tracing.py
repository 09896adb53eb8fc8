"""Tracing behind one seam: X-Ray segments with subsegments around cache, model load and inference
reach a daemon (a UDP socket on loopback at AWS_XRAY_DAEMON_ADDRESS, which is what the SDK sends
to); OpenTelemetry spans of a real HTTP request, caught by the SDK's in-memory exporter."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from docfn.adapters.wiring import build_service
from docfn.core.settings import Settings
from docfn_testkit.paths import OCR_PACK, OCR_PACK_VERSION, SAMPLE_PAGE


def _names(document: dict) -> list[str]:
    found = []
    for sub in document.get("subsegments", []):
        found.append(sub["name"])
        found.extend(_names(sub))
    return found


def test_subsegments_are_sent_to_the_daemon(model_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(10)
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", f"127.0.0.1:{daemon.getsockname()[1]}")
    service = build_service(Settings(tasks=["ocr"], model_store=model_store, tracing=True))
    service.run("ocr", SAMPLE_PAGE.read_bytes(), "image/png")
    header, _, body = daemon.recv(65535).decode().partition("\n")
    assert json.loads(header)["format"] == "json"
    segment = json.loads(body)
    assert segment["name"] == "docfn-ocr"
    assert segment["annotations"]["task"] == "ocr"
    assert {"cache_get", "model_load", "inference", "cache_set"} <= set(_names(segment))
    daemon.close()


def test_tracing_off_never_imports_the_sdk(model_store: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from docfn.adapters.wiring import build_service;"
        "from docfn.core.settings import Settings;"
        f"s = build_service(Settings(tasks=['ocr'], model_store={str(model_store)!r}));"
        f"s.run('ocr', open({str(SAMPLE_PAGE)!r}, 'rb').read(), 'image/png');"
        # (redis-py imports opentelemetry itself when installed, so ours is what is checked)
        "print('aws_xray_sdk' in sys.modules, 'docfn.cloud.otel' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False False"


@pytest.mark.parametrize(
    ("value", "chosen"),
    [("1", "xray"), ("true", "xray"), ("xray", "xray"), ("otel", "otel"), ("0", "off"), ("", "off")],
)
def test_tracing_setting(value: str, chosen: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCFN_TRACING", value)
    assert Settings().tracing == chosen  # DOCFN_TRACING=1 keeps meaning X-Ray


def test_unknown_tracing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("DOCFN_TRACING", "zipkin")
    with pytest.raises(ValidationError, match="xray"):
        Settings()


def test_opentelemetry_spans_of_a_real_request(model_store: Path) -> None:
    import asyncio

    import httpx
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from docfn.adapters.http.app import create_app
    from docfn.cloud.otel import OTelTracer
    from docfn.core.failsafe_tracing import FailSafeTracer

    settings = Settings(tasks=["ocr"], model_store=model_store, tracing="otel")
    chosen = build_service(settings).tracer
    assert isinstance(chosen, FailSafeTracer) and isinstance(chosen.inner, OTelTracer)  # OpenTelemetry
    exporter = InMemorySpanExporter()
    service = build_service(settings, tracer=OTelTracer("docfn-ocr", exporter=exporter, batch=False))
    app = create_app(settings, service)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docfn", timeout=120) as client:
            return await client.post(
                "/v1/ocr", content=SAMPLE_PAGE.read_bytes(), headers={"content-type": "image/png"}
            )

    assert asyncio.run(post()).status_code == 200
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert {"docfn-ocr", "cache_get", "model_load", "inference", "cache_set"} <= set(spans)
    root = spans["docfn-ocr"]
    assert root.kind == SpanKind.SERVER and root.parent is None
    assert root.attributes is not None and root.attributes["docfn.task"] == "ocr"
    assert root.resource.attributes["service.name"] == "docfn-ocr"
    for name in ("cache_get", "model_load", "inference", "cache_set"):
        span = spans[name]
        assert span.parent is not None and span.parent.span_id == root.context.span_id
        assert span.context.trace_id == root.context.trace_id
    assert spans["inference"].attributes == {"docfn.pages": "1"}
    assert spans["model_load"].attributes == {"docfn.pack": f"{OCR_PACK}@{OCR_PACK_VERSION}"}
    assert spans["cache_get"].attributes == {"docfn.cache": "memory"}
