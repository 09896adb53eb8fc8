"""The HTTP API through a real ``docfn serve`` process (the command the containers run)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import DocfnServer, RedisServer, scrape_metric, wait_until


@pytest.fixture(scope="module")
def server(model_store: Path):  # type: ignore[no-untyped-def]
    instance = DocfnServer({"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "ocr"}).start()
    yield instance
    instance.stop()


def test_health_readiness_metrics_and_docs(server: DocfnServer) -> None:
    with server.client() as client:
        assert client.get("/healthz").json()["status"] == "ok"
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["tasks"]["ocr"]["model"] == "ocr-ppocrv6-tiny@2"
        assert client.get("/docs").status_code == 200
        paths = client.get("/openapi.json").json()["paths"]
        assert "/v1/{task}" in paths
        # Each served task is documented with its options model, pages included, and its input types.
        operation = paths["/v1/ocr"]["post"]
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert {"pages", "min_confidence", "angle_cls"} <= set(parameters)
        assert parameters["min_confidence"]["schema"]["maximum"] == 1.0
        assert "application/pdf" in operation["requestBody"]["content"]
        assert "docfn_requests_total" in client.get("/metrics").text


def test_raw_body_then_cache_hit(server: DocfnServer) -> None:
    data = SAMPLE_PAGE.read_bytes()
    with server.client() as client:
        first = client.post(
            "/v1/ocr", content=data, headers={"content-type": "image/png", "x-request-id": "req-1"}
        )
        assert first.status_code == 200, first.text
        assert first.headers["x-request-id"] == "req-1"
        body = first.json()
        assert body["request_id"] == "req-1"
        assert body["cached"] is False
        assert body["cold"] is True  # this request paid for the model load
        assert "RaggedRight" in body["result"]["text"]
        assert "session_create" in first.headers["server-timing"]
        assert "first_inference" in body["timings_ms"]
        assert "warm_up" not in body["timings_ms"]  # only loads ahead of requests warm up

        second = client.post("/v1/ocr", content=data, headers={"content-type": "image/png"})
        assert second.json()["cached"] is True and second.json()["cold"] is False
        assert second.headers["x-docfn-cache"] == "hit"
        assert second.json()["result"] == body["result"]
        assert len(second.headers["x-request-id"]) == 32

        # Different options are a different result: no cache hit.
        third = client.post("/v1/ocr?min_confidence=0.9", content=data, headers={"content-type": "image/png"})
        assert third.json()["cached"] is False and third.json()["cold"] is False


def test_multipart_and_short_alias(server: DocfnServer) -> None:
    with server.client() as client:
        response = client.post("/ocr", files={"file": ("page.png", SAMPLE_PAGE.read_bytes(), "image/png")})
        assert response.status_code == 200, response.text
        assert "justified" in response.json()["result"]["text"]
        response = client.post("/v1/ocr", files={"other": ("page.png", b"x", "image/png")})
        assert response.status_code == 400
        assert "file" in response.json()["error"]["message"]


def test_pdf_pages_option(server: DocfnServer) -> None:
    from PIL import Image

    from docfn_testkit.docgen import pdf_from_images

    page = Image.open(SAMPLE_PAGE).convert("RGB")
    pdf = pdf_from_images([Image.new("RGB", page.size, "white"), page])
    with server.client() as client:
        response = client.post("/v1/ocr?pages=2", content=pdf, headers={"content-type": "application/pdf"})
    assert response.status_code == 200, response.text
    pages = response.json()["result"]["pages"]
    assert [p["page"] for p in pages] == [2]
    assert "RaggedRight" in pages[0]["text"]


def test_request_log_line_is_structured_json(model_store: Path) -> None:
    instance = DocfnServer({"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "ocr"}).start()
    try:
        with instance.client() as client:
            client.post(
                "/v1/ocr", content=b"", headers={"content-type": "image/png", "x-request-id": "log-me"}
            )
    finally:
        _, stderr = instance.stop()
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    line = next(r for r in records if r.get("request_id") == "log-me")
    assert line["task"] == "ocr" and line["status"] == 400 and line["error"] == "bad_input"


def test_server_uses_redis_and_survives_its_outage(model_store: Path, redis_server: RedisServer) -> None:
    import redis

    env = {"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "ocr", "DOCFN_REDIS_URL": redis_server.url}
    first_server = DocfnServer(env).start()
    data = SAMPLE_PAGE.read_bytes()
    try:
        with first_server.client() as client:
            assert (
                client.post("/v1/ocr", content=data, headers={"content-type": "image/png"}).json()["cached"]
                is False
            )
    finally:
        first_server.stop()
    keys = redis.Redis.from_url(redis_server.url).keys("docfn:v1:ocr:*")
    assert len(keys) == 1

    # A fresh instance (another container) gets the result from the shared cache.
    second_server = DocfnServer(env).start()
    try:
        with second_server.client() as client:
            response = client.post("/v1/ocr", content=data, headers={"content-type": "image/png"})
            assert response.json()["cached"] is True
            redis_server.stop()  # the cache goes away: service degrades to computing, never fails
            response = client.post(
                "/v1/ocr?min_confidence=0.6", content=data, headers={"content-type": "image/png"}
            )
            assert response.status_code == 200
            assert response.json()["cached"] is False
            assert "RaggedRight" in response.json()["result"]["text"]
    finally:
        second_server.stop()


def test_a_client_leaving_mid_upload_is_a_499_counted_apart(server: DocfnServer) -> None:
    """The caller announces 200 kB, sends 1 kB and hangs up: a 499 in the log and in
    docfn_requests_total, counted in docfn_client_disconnects_total, never a 500 or an error."""

    def counts() -> tuple[float, float, float, float]:
        with server.client() as client:
            text = client.get("/metrics").text
        return (
            scrape_metric(text, "docfn_requests_total", task="ocr", status="499") or 0.0,
            scrape_metric(text, "docfn_requests_total", task="ocr", status="500") or 0.0,
            scrape_metric(text, "docfn_client_disconnects_total", task="ocr") or 0.0,
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("docfn_errors_total{") and 'task="ocr"' in line
            ),
        )

    before = counts()
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        head = (
            "POST /v1/ocr HTTP/1.1\r\nHost: docfn\r\nContent-Type: image/png\r\n"
            "Content-Length: 200000\r\nX-Request-Id: leaving-early\r\n\r\n"
        )
        raw.sendall(head.encode() + SAMPLE_PAGE.read_bytes()[:1000])
    after = wait_until(lambda: (c := counts())[0] > before[0] and c, "the 499 to be counted", timeout=20)
    assert after[0] == before[0] + 1 and after[2] == before[2] + 1
    assert after[1] == before[1] and after[3] == before[3]  # no 500, no error of the server
    lines = [json.loads(line) for line in server.stderr_text().splitlines() if "leaving-early" in line]
    assert [line.get("status") for line in lines] == [499], lines
    assert "unhandled error" not in server.stderr_text()
    with server.client() as client:  # and it keeps serving
        page = client.post("/v1/ocr", content=SAMPLE_PAGE.read_bytes(), headers={"content-type": "image/png"})
        assert page.status_code == 200
