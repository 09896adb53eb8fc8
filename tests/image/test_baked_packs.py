"""`scripts/build_image TASK --with-packs` (issue 26): the function image with its verified packs baked
in, tested as that image. Behind the real RIE, with Terraform's pack variables naming ``s3://`` URIs
in a bucket that does not hold the packs: the function answers from the baked copies (no fetch, no
prefetch process), verified by sha256 at load; a baked pack that fails verification (a corrupted copy
mounted over it) leaves the function unready with the reason in /readyz, and refuses requests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from docfn_testkit import events
from docfn_testkit.containers import (
    LAMBDA_USER,
    REGION,
    RieFunction,
    build_image,
    devset_page,
    inspect_image,
    podman,
    rie_binary,
    word_recall,
)
from docfn_testkit.servers import AWS_TEST_CREDENTIALS, S3Server

BUCKET = "docfn-baked"  # exists, and holds no pack
PACK = "ocr-ppocrv6-tiny/2"


@pytest.fixture(scope="module")
def baked_ocr(container_host: None) -> str:
    return build_image("ocr", with_packs=True)


def environment(moto: S3Server) -> dict[str, str]:
    return {
        **AWS_TEST_CREDENTIALS,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "DOCFN_EAGER_LOAD": "1",
        "DOCFN_S3_ENDPOINT_URL": moto.endpoint_url,
        "DOCFN_MODEL_URI": f"s3://{BUCKET}/models/{PACK}",
    }


def test_the_baked_image_answers_without_a_fetch(baked_ocr: str, moto: S3Server) -> None:
    image = inspect_image(baked_ocr)
    assert image.env["DOCFN_BAKED_PACKS"] == "/opt/docfn/packs"
    moto.bucket(BUCKET)
    function = RieFunction(image, environment(moto), rie_binary(), user=LAMBDA_USER).start()
    try:
        page = devset_page("003")
        event = events.function_url_event("POST", "/v1/ocr", page, content_type="image/png", base64_body=True)
        first = function.invoke(event)
        assert first["statusCode"] == 200, f"{first.get('body')}\n{function.container.logs()}"
        body = json.loads(first["body"])
        assert body["cold"] is True and body["result"]["model"] == "ocr-ppocrv6-tiny@2"
        assert word_recall(body["result"]["text"], "003") >= 0.6
        timings = body["timings_ms"]
        assert timings["fetch"] == 0 and timings["verify"] > 0  # verified by sha256, not fetched
        logs = function.container.logs()
        assert '"prefetch"' not in logs and "fetched from s3://" not in logs
        ready = json.loads(function.invoke(events.function_url_event("GET", "/readyz"))["body"])
        assert ready["ready"] is True and ready["tasks"]["ocr"]["model"] == "ocr-ppocrv6-tiny@2"
    finally:
        function.stop()


def test_a_corrupted_baked_pack_leaves_the_function_unready_with_the_reason(
    baked_ocr: str, moto: S3Server, tmp_path: Path
) -> None:
    image = inspect_image(baked_ocr)
    moto.bucket(BUCKET)
    # The image's own pack, one byte of rec.onnx flipped, mounted over the baked copy.
    copy = tmp_path / "pack"
    function = RieFunction(image, environment(moto), rie_binary(), user=LAMBDA_USER)
    podman("create", "--name", f"{function.container.name}-src", baked_ocr)
    try:
        podman("cp", f"{function.container.name}-src:/opt/docfn/packs/{PACK}", str(copy))
    finally:
        podman("rm", f"{function.container.name}-src", check=False)
    rec = copy / "rec.onnx"
    data = bytearray(rec.read_bytes())
    data[len(data) // 2] ^= 0xFF
    rec.write_bytes(bytes(data))
    tmp_path.chmod(0o755)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    function.container.volumes = [*function.container.volumes, f"{copy}:/opt/docfn/packs/{PACK}:ro"]
    function.start()
    try:
        page = devset_page("003")
        event = events.function_url_event("POST", "/v1/ocr", page, content_type="image/png", base64_body=True)
        refused = function.invoke(event)
        assert refused["statusCode"] == 500, refused.get("body")
        assert json.loads(refused["body"])["error"]["code"] == "pack_verification_failed"
        ready = function.invoke(events.function_url_event("GET", "/readyz"))
        assert ready["statusCode"] == 503
        reason = json.loads(ready["body"])
        assert "rec.onnx sha256" in reason["error"] and "baked into" in reason["error"]
        assert reason["tasks"]["ocr"]["loaded"] is False
        assert "eager model load failed" in function.container.logs()
    finally:
        function.stop()
        shutil.rmtree(copy, ignore_errors=True)
