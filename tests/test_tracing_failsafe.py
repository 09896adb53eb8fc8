"""Tracing can never fail or slow a request. A tracing SDK that cannot start (the X-Ray SDK's
sampler asks botocore for an ``xray`` client, and an image without that service model raised
``UnknownServiceError`` on every request), a daemon or collector nobody listens at: ``docfn serve``
off Lambda still answers 200, and a broken tracer says so once in the log, then steps aside."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from docfn.core.failsafe_tracing import FailSafeTracer
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import DocfnServer, free_port

# Loaded by `site` at interpreter start (PYTHONPATH): botocore as in an image whose botocore/data
# kept no xray model.
NO_XRAY_MODEL = """
import botocore.exceptions, botocore.session

_create_client = botocore.session.Session.create_client

def create_client(self, service_name, *args, **kwargs):
    if service_name == "xray":
        raise botocore.exceptions.UnknownServiceError(service_name="xray", known_service_names="s3")
    return _create_client(self, service_name, *args, **kwargs)

botocore.session.Session.create_client = create_client
"""
# Off Lambda: the test process may run with Lambda's variables set by an earlier fixture.
OFF_LAMBDA = {"AWS_LAMBDA_FUNCTION_NAME": "", "LAMBDA_TASK_ROOT": ""}


def _serve_three(server: DocfnServer) -> list[tuple[int, float]]:
    answers = []
    with server.client(timeout=60) as client:
        for _ in range(3):
            started = time.perf_counter()
            response = client.post(
                "/v1/ocr", content=SAMPLE_PAGE.read_bytes(), headers={"content-type": "image/png"}
            )
            answers.append((response.status_code, time.perf_counter() - started))
    return answers


def _warnings(stderr: str) -> list[dict]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "docfn.tracing"]


def test_xray_sdk_that_cannot_start_never_fails_a_request(model_store: Path, tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(NO_XRAY_MODEL)
    server = DocfnServer(
        {
            **OFF_LAMBDA,
            "DOCFN_MODEL_STORE": str(model_store),
            "DOCFN_TASKS": "ocr",
            "DOCFN_TRACING": "xray",
            "PYTHONPATH": str(tmp_path),
        }
    ).start()
    try:
        answers = _serve_three(server)
    finally:
        _, stderr = server.stop()
    assert [status for status, _ in answers] == [200, 200, 200], stderr[-2000:]
    [warning] = _warnings(stderr)  # said once, not once per request
    assert warning["level"] == "WARNING" and "UnknownServiceError" in warning["message"]


@pytest.mark.parametrize(
    ("tracing", "env"),
    [
        ("xray", lambda port: {"AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}"}),
        ("otel", lambda port: {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}),
    ],
)
def test_unreachable_daemon_or_collector_never_fails_a_request(tracing: str, env, model_store: Path) -> None:
    nobody = free_port()  # nothing listens there
    server = DocfnServer(
        {
            **OFF_LAMBDA,
            "DOCFN_MODEL_STORE": str(model_store),
            "DOCFN_TASKS": "ocr",
            "DOCFN_TRACING": tracing,
            **env(nobody),
        }
    ).start()
    try:
        answers = _serve_three(server)
    finally:
        _, stderr = server.stop()
    assert [status for status, _ in answers] == [200, 200, 200], stderr[-2000:]
    # Warm requests are not held up by the export (OTel sends from its batch thread, X-Ray by UDP).
    assert max(seconds for _, seconds in answers[1:]) < 5.0, answers


class _Broken:
    """A tracer whose SDK fails on the way into spans (``enter``) or out of them (``exit``)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.opened = 0

    @contextmanager
    def _span(self) -> Iterator[None]:
        self.opened += 1
        if self.where == "enter":
            raise RuntimeError("sdk broke on enter")
        yield
        raise RuntimeError("sdk broke on exit")

    def request(self, name: str, **annotations: str) -> AbstractContextManager[None]:
        return self._span()

    def subsegment(self, name: str, **annotations: str) -> AbstractContextManager[None]:
        return self._span()

    def flush(self, timeout_seconds: float) -> None:
        raise TimeoutError("collector down")


@pytest.mark.parametrize("where", ["enter", "exit"])
def test_failsafe_tracer_steps_aside_and_keeps_the_request_s_own_errors(where: str) -> None:
    inner = _Broken(where)
    tracer = FailSafeTracer(inner, "test")
    ran = []
    with tracer.request("r"), tracer.subsegment("s"):
        ran.append(1)
    assert ran == [1] and tracer.failed
    with pytest.raises(KeyError, match="the request's own"), tracer.subsegment("s"):
        raise KeyError("the request's own")
    tracer.flush(1.0)  # off: nothing asked of the SDK any more
    # Spans opened before the failure were closed; none was opened after it.
    assert inner.opened == (1 if where == "enter" else 2)


def test_failsafe_tracer_flush_failure_turns_it_off() -> None:
    tracer = FailSafeTracer(_Broken("none"), "test")
    tracer.flush(0.1)
    assert tracer.failed
