"""The function image with each tracer on, off Lambda (``podman run`` of ``docfn serve``, as Knative
runs it) and on Lambda (its own entry point behind the real RIE): requests answer 200. The image
strips botocore's service models to a keep list, and the X-Ray SDK's sampler builds an ``xray``
client when it is imported: without that model every request answered 500. The model is kept now
(functions/Dockerfile BOTOCORE_SERVICES), and a tracer that cannot start would step aside anyway
(tests/test_tracing_failsafe.py covers that without podman). OpenTelemetry's spans reach a collector
(a stand-in on the host's loopback): on Lambda before the invocation returns (the handler flushes)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from docfn.packs.catalog import DEFAULT_PACKS
from docfn.tasks.registry import default_pack_settings
from docfn_testkit import events
from docfn_testkit.containers import LAMBDA_USER, REGION, Container, ImageConfig, RieFunction, rie_binary
from docfn_testkit.otlp_collector import OtlpCollector
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import AWS_TEST_CREDENTIALS, S3Server, free_port, wait_until


def tracer_env(tracer: str, collector: OtlpCollector) -> dict[str, str]:
    if tracer == "xray":  # nothing listens at the daemon's port: UDP goes nowhere
        return {"DOCFN_TRACING": "xray", "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{free_port()}"}
    return {"DOCFN_TRACING": "otel", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint}


@pytest.mark.parametrize("tracer", ["xray", "otel"])
def test_tracing_under_docfn_serve_answers_200(
    tracer: str, image_for: Callable[[str], ImageConfig], pack_store: Path, tmp_path: Path
) -> None:
    image = image_for("ocr")
    # The OCR pack, readable by the image's unprivileged user (the shared store is the host's).
    store = tmp_path / "models"
    shutil.copytree(pack_store / DEFAULT_PACKS["ocr"], store / DEFAULT_PACKS["ocr"])
    for path in [store, *store.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    port = free_port()
    with (
        OtlpCollector() as collector,
        Container(
            image.tag,
            entrypoint=["docfn", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={
                "DOCFN_TASKS": "ocr",
                "DOCFN_MODEL_STORE": "/models",
                **tracer_env(tracer, collector),
            },
            volumes=[f"{store}:/models:ro"],
        ) as container,
    ):
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and container.running(), container.logs()
            time.sleep(0.5)
        answers = [
            httpx.post(
                f"{url}/v1/ocr",
                content=SAMPLE_PAGE.read_bytes(),
                headers={"content-type": "image/png"},
                timeout=120,
            )
            for _ in range(2)
        ]
        if tracer == "otel":  # the batch span processor exports within its schedule delay
            wait_until(collector.span_names, "spans at the collector", timeout=60)
        records, logs = container.log_records(), container.logs()
    assert [answer.status_code for answer in answers] == [200, 200], (answers[0].text, logs[-3000:])
    # The SDK started: no "tracing failed" warning, no UnknownServiceError anywhere.
    assert not [r for r in records if r.get("logger") == "docfn.tracing"], records
    assert "UnknownServiceError" not in "".join(str(r) for r in records)


@pytest.mark.parametrize("tracer", ["xray", "otel"])
def test_tracing_on_lambda_answers_200(
    tracer: str, image_for: Callable[[str], ImageConfig], moto: S3Server, publish: Callable[[str, str], str]
) -> None:
    image = image_for("ocr")
    with OtlpCollector() as collector:
        env = {
            **AWS_TEST_CREDENTIALS,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "DOCFN_S3_ENDPOINT_URL": moto.endpoint_url,
            **{name: publish("docfn-tracing", ref) for name, ref in default_pack_settings("ocr").items()},
            **tracer_env(tracer, collector),
        }
        function = RieFunction(image, env, rie_binary(), user=LAMBDA_USER).start()
        try:
            event = events.function_url_event(
                "POST", "/v1/ocr", SAMPLE_PAGE.read_bytes(), content_type="image/png", base64_body=True
            )
            answers = [function.invoke(event) for _ in range(2)]
            spans = collector.span_names()  # read as the invocations returned: flushed by then
            logs = function.container.logs()
        finally:
            function.stop()
    assert [answer["statusCode"] for answer in answers] == [200, 200], logs[-3000:]
    assert "UnknownServiceError" not in logs and "tracing failed" not in logs, logs[-3000:]
    if tracer == "otel":
        assert spans, "the handler flushes the invocation's spans before it returns"
