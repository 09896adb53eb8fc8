"""Model packs on S3 (issue #4): publish, lazy fetch on first use, refusal, outage and recovery.

Everything talks to moto's standalone S3 server over HTTP on loopback through boto3's
``endpoint_url``; nothing in AWS's client is patched.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path

import pytest

from docfn.adapters.wiring import build_service
from docfn.core.errors import PackNotConfigured
from docfn.core.settings import Settings
from docfn.packs.manifest import MANIFEST_NAME, PackVerificationError, verify_pack
from docfn.packs.store import VERIFIED_MARKER as MARKER
from docfn.service.service import DocService
from docfn.tooling.publish import PublishRefused, check_accuracy, publish_pack
from docfn_testkit.paths import DEVSET, OCR_PACK, OCR_PACK_VERSION, SAMPLE_PAGE
from docfn_testkit.servers import DocfnServer, S3Server

BUCKET = "docfn-test"
TINY = OCR_PACK
URI = f"s3://{BUCKET}/models/{TINY}/{OCR_PACK_VERSION}"


def _service(store: Path, s3: S3Server, uri: str = URI, **extra: object) -> DocService:
    settings = Settings(
        tasks=["ocr"], model_uri=uri, model_store=store, s3_endpoint_url=s3.endpoint_url, **extra
    )
    return build_service(settings)


def _leftovers(store: Path) -> list[str]:
    """Anything a fetch left in the store besides finished packs (temp dirs, partial files)."""
    return sorted(p.name for p in store.rglob("*") if p.name.endswith(".part") or p.name.startswith("."))


@pytest.fixture
def tiny_source(model_store: Path) -> Path:
    return model_store / TINY / OCR_PACK_VERSION


def test_publish_then_fetch_on_first_use_and_run_ocr(
    s3_server: S3Server, tiny_source: Path, tmp_path: Path
) -> None:
    result = publish_pack(tiny_source, BUCKET, endpoint_url=s3_server.endpoint_url)
    assert result.uri == URI and result.files == 3
    keys = {o["Key"] for o in s3_server.client().list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert (
        f"models/{TINY}/{OCR_PACK_VERSION}/{MANIFEST_NAME}" in keys
        and f"models/{TINY}/{OCR_PACK_VERSION}/rec.onnx" in keys
    )

    store = tmp_path / "tmp-store"
    service = _service(store, s3_server)
    assert not (store / TINY).exists()  # building the service fetched nothing: lazy
    outcome = service.run("ocr", SAMPLE_PAGE.read_bytes(), "image/png")
    assert "RaggedRight" in outcome.result["text"]
    assert outcome.cold and outcome.result["model"] == f"{TINY}@{OCR_PACK_VERSION}"
    assert outcome.timings["fetch"] > 0 and outcome.timings["verify"] > 0
    assert {"session_create", "first_inference"} <= set(outcome.timings)
    local = store / TINY / OCR_PACK_VERSION
    assert verify_pack(local).pack_id == f"{TINY}@{OCR_PACK_VERSION}"
    assert (local / MARKER).is_file() and _leftovers(store) == [MARKER]

    # A new process in the same (warm) container reuses the verified copy: no S3 needed at all.
    s3_server.stop()
    again = _service(store, s3_server).run("ocr", SAMPLE_PAGE.read_bytes(), "image/png")
    assert again.cold and again.timings["fetch"] == 0.0
    assert again.result["text"] == outcome.result["text"]


def test_concurrent_first_requests_fetch_and_build_once(
    s3_server: S3Server, tiny_source: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publish_pack(tiny_source, BUCKET, endpoint_url=s3_server.endpoint_url)
    service = _service(tmp_path / "store", s3_server, max_concurrency=6)
    task = service.task("ocr")
    barrier = threading.Barrier(6)
    reports: list[dict[str, float]] = []
    errors: list[BaseException] = []

    def first_request() -> None:
        barrier.wait()
        try:
            reports.append(task.load().phases)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    caplog.set_level(logging.INFO, logger="docfn.packs")
    threads = [threading.Thread(target=first_request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    performed = [r for r in reports if r]
    assert len(reports) == 6 and len(performed) == 1  # one caller paid the cold start, five waited
    assert {"fetch", "verify", "session_create"} <= set(performed[0])
    fetches = [r for r in caplog.records if "fetched from s3://" in r.getMessage()]
    assert len(fetches) == 1


def test_corrupted_object_is_refused_and_nothing_is_cached(
    s3_server: S3Server, tiny_source: Path, tmp_path: Path
) -> None:
    publish_pack(tiny_source, BUCKET, endpoint_url=s3_server.endpoint_url)
    client = s3_server.client()
    key = f"models/{TINY}/{OCR_PACK_VERSION}/rec.onnx"
    data = bytearray(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    data[len(data) // 2 : len(data) // 2 + 16] = bytes(
        b ^ 0xFF for b in data[len(data) // 2 : len(data) // 2 + 16]
    )
    client.put_object(Bucket=BUCKET, Key=key, Body=bytes(data))  # same size, different bytes

    store = tmp_path / "store"
    service = _service(store, s3_server)
    with pytest.raises(PackVerificationError, match=r"refused: pack file rec.onnx sha256") as caught:
        service.run("ocr", SAMPLE_PAGE.read_bytes(), "image/png")
    assert caught.value.status == 500 and caught.value.code == "pack_verification_failed"
    assert not (store / TINY).exists() and _leftovers(store) == []
    assert not service.task("ocr").ready

    # Fixed in the bucket: the next request fetches again and succeeds (failures are not remembered).
    publish_pack(tiny_source, BUCKET, endpoint_url=s3_server.endpoint_url, force=True)
    assert "RaggedRight" in service.run("ocr", SAMPLE_PAGE.read_bytes(), "image/png").result["text"]


def test_missing_manifest_is_a_clear_configuration_error(s3_server: S3Server, tmp_path: Path) -> None:
    """SPEC: a task whose model pack is not configured answers 503 saying how to publish one."""
    service = _service(tmp_path / "store", s3_server, uri=f"s3://{BUCKET}/models/{TINY}/9")
    with pytest.raises(PackNotConfigured) as caught:
        service.run("ocr", SAMPLE_PAGE.read_bytes(), "image/png")
    assert caught.value.status == 503 and caught.value.code == "model_pack_not_configured"
    assert f"DOCFN_MODEL_URI=s3://{BUCKET}/models/{TINY}/9" in caught.value.message
    assert f"no model pack manifest at s3://{BUCKET}/models/{TINY}/9/manifest.json" in caught.value.message
    assert "docfn models publish" in caught.value.message
    assert _leftovers(tmp_path / "store") == []


def test_s3_outage_is_503_with_retry_after_then_recovers(
    s3_server: S3Server, tiny_source: Path, tmp_path: Path
) -> None:
    publish_pack(tiny_source, BUCKET, endpoint_url=s3_server.endpoint_url)
    s3_server.stop()
    server = DocfnServer(
        {
            "DOCFN_MODEL_STORE": str(tmp_path / "store"),
            "DOCFN_TASKS": "ocr",
            "DOCFN_MODEL_URI": URI,
            "DOCFN_S3_ENDPOINT_URL": s3_server.endpoint_url,
        }
    ).start()
    page = SAMPLE_PAGE.read_bytes()
    try:
        with server.client() as client:
            down = client.post("/v1/ocr", content=page, headers={"content-type": "image/png"})
            assert down.status_code == 503, down.text
            assert int(down.headers["retry-after"]) > 0
            error = down.json()["error"]
            assert error["code"] == "unavailable"
            assert f"model store is unreachable: could not fetch model pack {URI}" in error["message"]
            assert _leftovers(tmp_path / "store") == []
            # Still in rotation (a transient failure), so the next request can retry the load.
            ready = client.get("/readyz")
            assert ready.status_code == 200 and "unreachable" in ready.json()["tasks"]["ocr"]["error"]

            # S3 is back on the same endpoint (a fresh server: the pack is published again).
            s3_server.start()
            s3_server.client().create_bucket(Bucket=BUCKET)
            publish_pack(tiny_source, BUCKET, endpoint_url=s3_server.endpoint_url)
            up = client.post("/v1/ocr", content=page, headers={"content-type": "image/png"})
            assert up.status_code == 200, up.text
            body = up.json()
            assert body["cold"] is True and "RaggedRight" in body["result"]["text"]
            timing = up.headers["server-timing"]
            for phase in ("import", "fetch", "verify", "session_create", "first_inference"):
                assert f"{phase};dur=" in timing
            assert body["timings_ms"]["import"] > 0

            warm = client.post(
                "/v1/ocr?min_confidence=0.6", content=page, headers={"content-type": "image/png"}
            )
            assert warm.json()["cold"] is False
            assert "import" not in warm.json()["timings_ms"] and "fetch" not in warm.headers["server-timing"]
            metrics_text = client.get("/metrics").text
            assert "docfn_import_seconds " in metrics_text
            assert 'docfn_phase_seconds_count{phase="fetch",task="ocr"} 1.0' in metrics_text
    finally:
        server.stop()


def _with_accuracy(source: Path, target: Path, precision: str, accuracy: dict) -> Path:
    shutil.copytree(source, target)
    manifest = json.loads((target / MANIFEST_NAME).read_text())
    manifest.update(precision=precision, accuracy=accuracy)
    (target / MANIFEST_NAME).write_text(json.dumps(manifest))
    return target


def test_publish_gate_and_immutable_versions(
    s3_server: S3Server, tiny_source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from docfn.adapters.cli.main import main

    endpoint = s3_server.endpoint_url
    worse = _with_accuracy(
        tiny_source,
        tmp_path / "worse" / TINY / OCR_PACK_VERSION,
        "int8",
        {"metric": "cer", "fp32": 0.0400, "int8": 0.0460, "eval_set": "devset", "pages": 7},
    )
    with pytest.raises(PublishRefused, match=r"0.60 pp worse than the fp32 source's 4.00%"):
        publish_pack(worse, BUCKET, endpoint_url=endpoint)
    assert main(["models", "publish", str(worse), "--bucket", BUCKET, "--endpoint-url", endpoint]) == 2
    assert s3_server.client().list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0  # nothing uploaded
    # The margin is configurable; 0.6 pp is within 1 pp.
    args = ["models", "publish", str(worse), "--bucket", BUCKET, "--endpoint-url", endpoint]
    assert main([*args, "--max-cer-regression-pp", "1"]) == 0

    unmeasured = _with_accuracy(tiny_source, tmp_path / "unmeasured" / TINY / OCR_PACK_VERSION, "int8", {})
    with pytest.raises(PublishRefused, match="records no CER"):
        check_accuracy(verify_pack(unmeasured))

    with pytest.raises(PublishRefused, match="already exists; versions are immutable"):
        publish_pack(tiny_source, BUCKET, endpoint_url=endpoint)
    assert publish_pack(tiny_source, BUCKET, endpoint_url=endpoint, force=True).uri == URI
    capsys.readouterr()
    assert main(["models", "list", "--bucket", BUCKET, "--endpoint-url", endpoint]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (
        listed["pack"] == f"{TINY}@{OCR_PACK_VERSION}"
        and listed["uri"] == URI
        and listed["precision"] == "fp32"
    )


def test_quantize_makes_a_pack_that_verifies_publishes_and_runs(
    s3_server: S3Server, tiny_source: Path, tmp_path: Path
) -> None:
    from docfn.tooling.quantize import QuantizeOptions, quantize_pack

    calibration, evaluation = tmp_path / "cal", tmp_path / "eval"
    for directory, page_id in ((calibration, "003"), (evaluation, "008")):
        directory.mkdir()
        for suffix in (".png", ".txt"):
            (directory / f"{page_id}{suffix}").symlink_to(DEVSET / f"{page_id}{suffix}")
    store = tmp_path / "store"
    # One timing round: this test is about the pack, not about the stability of the speed choice.
    options = QuantizeOptions(calibration, evaluation, calibration_pages=1, warmup=False, repeats=1)
    pack = quantize_pack(tiny_source, store, options)

    manifest = verify_pack(pack)
    assert manifest.name == TINY and pack == store / TINY / manifest.version
    accuracy = manifest.accuracy
    assert accuracy["metric"] == "cer" and accuracy["pages"] == 1 and "008" in accuracy["eval_set"]
    assert 0 <= accuracy["fp32"] < 0.2 and 0 <= accuracy["int8"] < 0.2
    assert set(accuracy["models"]) == {"det", "rec"}
    assert manifest.precision == ("int8" if manifest.extra["int8_models"] else "fp32")
    if manifest.precision == "fp32":
        assert accuracy["reason"]
    assert manifest.extra["graph_optimization"]["level"] == "ORT_ENABLE_EXTENDED"
    assert manifest.source["pack"] == f"{TINY}@{OCR_PACK_VERSION}"
    assert _leftovers(store) == []
    check_accuracy(manifest)  # within the default margin, or it would not have been chosen

    published = publish_pack(pack, BUCKET, endpoint_url=s3_server.endpoint_url)
    outcome = _service(tmp_path / "fetched", s3_server, uri=published.uri).run(
        "ocr", SAMPLE_PAGE.read_bytes(), "image/png"
    )
    assert "RaggedRight" in outcome.result["text"]
    assert outcome.result["model"] == f"{TINY}@{manifest.version}"
