"""The server as a container runs it: $PORT, eager load + readiness, graceful drain on SIGTERM,
load shedding (429 + Retry-After) and the inference deadline (504)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx
from PIL import Image

from docfn_testkit.docgen import pdf_from_images
from docfn_testkit.inputs import image_bytes
from docfn_testkit.paths import OCR_PACK, OCR_PACK_VERSION, ROOT, SAMPLE_PAGE
from docfn_testkit.servers import DocfnServer, S3Server, scrape_metric, wait_until


def _page_variant(seed: int) -> bytes:
    """The sample page with a tiny change: a different input hash, the same amount of work."""
    image = Image.open(SAMPLE_PAGE).convert("RGB")
    image.putpixel((seed, 0), (seed % 256, 0, 0))
    return image_bytes(image, "PNG")


def _admitted(server: DocfnServer) -> float:
    """Requests the server has admitted and not finished (its ``docfn_in_flight`` gauge)."""
    return scrape_metric(httpx.get(f"{server.url}/metrics", timeout=10).text, "docfn_in_flight") or 0.0


def _knative_container(task: str) -> dict:
    import yaml

    service = yaml.safe_load((ROOT / "knative" / "base" / "services" / f"docfn-{task}.yaml").read_text())
    return service["spec"]["template"]["spec"]["containers"][0]


def test_sigterm_mid_request_finishes_it_and_exits_zero(model_store: Path) -> None:
    page = Image.open(SAMPLE_PAGE).convert("RGB")
    pdf = pdf_from_images([page] * 4)  # several seconds of OCR: SIGTERM lands mid-request
    # Exactly as the Knative container runs: its command, with PORT in the environment.
    container = _knative_container("ocr")
    assert container["command"] == ["docfn", "serve", "--host", "0.0.0.0"]
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    env.update({"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "ocr"})
    # Not the deadline under test: a loaded machine must not turn the four pages into a 504.
    env["DOCFN_INFERENCE_TIMEOUT_SECONDS"] = "300"
    server = DocfnServer(env, command=container["command"]).start()
    assert server.process is not None
    result: dict[str, httpx.Response] = {}

    def call() -> None:
        with httpx.Client(base_url=server.url, timeout=300) as client:
            result["response"] = client.post(
                "/v1/ocr", content=pdf, headers={"content-type": "application/pdf"}
            )

    worker = threading.Thread(target=call)
    worker.start()
    wait_until(lambda: _admitted(server) == 1, "the request to be admitted")
    assert server.process.poll() is None and "response" not in result  # four pages: seconds of work
    server.process.send_signal(signal.SIGTERM)
    worker.join(timeout=300)
    code, _ = server.stop()
    assert result["response"].status_code == 200
    assert len(result["response"].json()["result"]["pages"]) == 4
    assert code == 0
    # After SIGTERM the port no longer takes new work.
    try:
        httpx.get(f"{server.url}/healthz", timeout=2)
        raise AssertionError("server still accepting after SIGTERM")
    except httpx.TransportError:
        pass


def test_eager_load_gates_readiness(model_store: Path, tmp_path: Path) -> None:
    import shutil

    store = tmp_path / "store"
    shutil.copytree(model_store / "ocr-ppocrv6-tiny", store / "ocr-ppocrv6-tiny")
    server = DocfnServer(
        {"DOCFN_MODEL_STORE": str(store), "DOCFN_TASKS": "ocr", "DOCFN_EAGER_LOAD": "1"}
    ).start()
    try:
        with server.client() as client:
            response = wait_until(lambda: (r := client.get("/readyz")).status_code == 200 and r, "readiness")
            assert response.json()["tasks"]["ocr"]["loaded"] is True
            # The model was loaded before the first request: that request is the container's cold
            # one (it reports the load's phases) but waited for none of it.
            body = client.post(
                "/v1/ocr", content=SAMPLE_PAGE.read_bytes(), headers={"content-type": "image/png"}
            ).json()
            assert body["cold"] is True and body["timings_ms"]["load_wait"] == 0
            # ... and its sessions had already run once (ONNX Runtime's first-run costs, off the path).
            assert {"fetch", "verify", "session_create", "warm_up", "first_inference"} <= set(
                body["timings_ms"]
            )
            again = client.post(
                "/v1/ocr", content=SAMPLE_PAGE.read_bytes(), headers={"content-type": "image/png"}
            ).json()
            assert again["cold"] is False and "load_wait" not in again["timings_ms"]
    finally:
        server.stop()


def test_eager_load_failure_keeps_readiness_false(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-pack" / "1"
    env = {"DOCFN_TASKS": "ocr", "DOCFN_EAGER_LOAD": "1", "DOCFN_MODEL_URI": str(missing)}
    server = DocfnServer(env).start()
    try:
        with server.client() as client:
            response = wait_until(
                lambda: (r := client.get("/readyz")).json().get("error") and r, "the failed eager load"
            )
            assert response.status_code == 503
            assert "no model pack manifest" in response.json()["error"]
            assert client.get("/healthz").status_code == 200  # alive, so the pod is not killed in a loop
    finally:
        server.stop()


def test_full_queue_sheds_with_429(model_store: Path) -> None:
    env = {
        "DOCFN_MODEL_STORE": str(model_store),
        "DOCFN_TASKS": "ocr",
        "DOCFN_MAX_CONCURRENCY": "1",
        "DOCFN_MAX_QUEUE": "0",
        "DOCFN_RETRY_AFTER_SECONDS": "3",
        # Not the deadline under test: a loaded machine must not turn the four pages into a 504.
        "DOCFN_INFERENCE_TIMEOUT_SECONDS": "300",
    }
    server = DocfnServer(env).start()
    responses: list[httpx.Response] = []

    def call(seed: int) -> None:
        with server.client() as client:
            responses.append(
                client.post("/v1/ocr", content=_page_variant(seed), headers={"content-type": "image/png"})
            )

    def call_pdf() -> None:  # four pages: seconds of work, so it surely runs while the second comes
        page = Image.open(SAMPLE_PAGE).convert("RGB")
        with server.client() as client:
            responses.append(
                client.post(
                    "/v1/ocr",
                    content=pdf_from_images([page] * 4),
                    headers={"content-type": "application/pdf"},
                )
            )

    try:
        first = threading.Thread(target=call_pdf)
        first.start()
        wait_until(lambda: _admitted(server) == 1, "the first request to be admitted")
        call(2)
        first.join()
    finally:
        server.stop()
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 429]
    shed = next(r for r in responses if r.status_code == 429)
    assert shed.headers["retry-after"] == "3"
    assert shed.json()["error"]["code"] == "overloaded"


def test_inference_deadline_gives_504(model_store: Path) -> None:
    env = {
        "DOCFN_MODEL_STORE": str(model_store),
        "DOCFN_TASKS": "ocr",
        "DOCFN_INFERENCE_TIMEOUT_SECONDS": "0.05",
    }
    server = DocfnServer(env).start()
    try:
        with server.client() as client:
            response = client.post(
                "/v1/ocr", content=SAMPLE_PAGE.read_bytes(), headers={"content-type": "image/png"}
            )
    finally:
        server.stop()
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "deadline_exceeded"


def test_eager_load_retries_until_the_pack_is_published(
    s3_server: S3Server, model_store: Path, tmp_path: Path
) -> None:
    """A pod that starts before its pack is published becomes ready once it is, without a restart."""
    from docfn.tooling.publish import publish_pack

    env = {
        "DOCFN_TASKS": "ocr",
        "DOCFN_EAGER_LOAD": "1",
        "DOCFN_MODEL_STORE": str(tmp_path / "store"),
        "DOCFN_MODEL_URI": "s3://docfn-test/models/ocr-ppocrv6-tiny/2",
        "DOCFN_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "DOCFN_RETRY_AFTER_SECONDS": "1",
        "K_SERVICE": "docfn-ocr",  # a deployed function: it never builds the pack itself
    }
    server = DocfnServer(env).start()
    try:
        with server.client() as client:
            response = wait_until(
                lambda: (r := client.get("/readyz")).json().get("error") and r, "the failed eager load"
            )
            assert response.status_code == 503 and "docfn models publish" in response.json()["error"]
            publish_pack(
                model_store / OCR_PACK / OCR_PACK_VERSION, "docfn-test", endpoint_url=s3_server.endpoint_url
            )
            response = wait_until(
                lambda: (r := client.get("/readyz")).status_code == 200 and r, "readiness after publishing"
            )
            assert response.json()["tasks"]["ocr"]["loaded"] is True
    finally:
        server.stop()
