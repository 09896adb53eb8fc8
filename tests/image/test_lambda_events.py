"""The function image's own ENTRYPOINT + CMD (the real awslambdaric client inside it) against our Lambda
Runtime API emulator (docfn_testkit/runtime_api.py), event source by event source: function URL
requests, S3 ObjectCreated notifications for uploads (direct, through SQS, through EventBridge) and
the presigned-upload flow. Read-only root and a tmpfs /tmp, as on Lambda; S3 is moto on the host's
loopback, the result cache a real redis-server.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import httpx
import pytest

from docfn_testkit import events
from docfn_testkit.containers import (
    REGION,
    ContainerFunction,
    ImageConfig,
    Redis,
    devset_page,
    lambda_environment,
    podman,
    word_recall,
)
from docfn_testkit.servers import S3Server

BUCKET = events.BUCKET  # the sample events are retargeted at this bucket by their helpers
TASK = "ocr"
PAGE_ID = "003"


@cache
def page() -> bytes:
    """The devset page every request sends, read when a test first needs it (not at import)."""
    return devset_page(PAGE_ID)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    server = Redis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def function(
    image_for: Callable[[str], ImageConfig],
    moto: S3Server,
    publish: Callable[[str, str], str],
    redis_server: Redis,
) -> Iterator[ContainerFunction]:
    moto.bucket(BUCKET)
    env = {
        **lambda_environment(f"docfn-{TASK}", memory_mb=2048, timeout_s=60),
        "DOCFN_BUCKET": BUCKET,
        "DOCFN_MODEL_URI": publish(BUCKET, "ocr-ppocrv6-tiny/2"),
        "DOCFN_S3_ENDPOINT_URL": moto.endpoint_url,
        "DOCFN_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0",
    }
    fn = ContainerFunction(image_for(TASK), env).start()
    yield fn
    fn.stop()


def _object(moto: S3Server, key: str) -> dict[str, Any]:
    return json.loads(moto.client().get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _put(moto: S3Server, key: str, data: bytes) -> None:
    moto.client().put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="image/png")


def test_function_url_request(function: ContainerFunction) -> None:
    event = events.function_url_event(
        "POST", f"/v1/{TASK}", page(), content_type="image/png", base64_body=True
    )
    invocation = function.invoke(event)
    assert invocation.outcome == "response", invocation.payload.decode()
    response = invocation.json()
    assert response["statusCode"] == 200, response["body"]
    body = json.loads(response["body"])
    assert word_recall(body["result"]["text"], PAGE_ID) >= 0.6
    assert response["headers"]["x-request-id"] == invocation.request_id == body["request_id"]
    again = function.response(event)
    assert again["statusCode"] == 200 and json.loads(again["body"])["cached"] is True  # Redis answered


def test_s3_object_created_for_an_upload_writes_result_and_status(
    function: ContainerFunction, moto: S3Server
) -> None:
    job_id = uuid.uuid4().hex
    key = f"uploads/{TASK}/{job_id}/scan ü 1.png"
    _put(moto, key, page())
    response = function.response(events.s3_event(key, len(page())))
    assert [r["state"] for r in response["records"]] == ["succeeded"], response
    status = _object(moto, f"results/{job_id}/status.json")
    assert status["state"] == "succeeded" and status["input_key"] == key
    assert status["result_keys"] == [f"results/{job_id}/result.json"]
    result = _object(moto, f"results/{job_id}/result.json")
    assert word_recall(result["result"]["text"], PAGE_ID) >= 0.6


def test_sqs_and_eventbridge_deliveries(function: ContainerFunction, moto: S3Server) -> None:
    good, bad = uuid.uuid4().hex, uuid.uuid4().hex
    good_key, bad_key = f"uploads/{TASK}/{good}/a.png", f"uploads/{TASK}/{bad}/broken.png"
    _put(moto, good_key, page())
    _put(moto, bad_key, page()[:1000])
    bad_id = str(uuid.uuid4())
    batch = events.sqs_event(
        [
            (str(uuid.uuid4()), events.sqs_notification(good_key, len(page()))),
            (bad_id, events.sqs_notification(bad_key, 1000)),
        ]
    )
    assert function.response(batch) == {"batchItemFailures": [{"itemIdentifier": bad_id}]}
    assert _object(moto, f"results/{good}/status.json")["state"] == "succeeded"
    assert _object(moto, f"results/{bad}/status.json")["state"] == "failed"

    job_id = uuid.uuid4().hex
    key = f"uploads/{TASK}/{job_id}/scan (copy)+2.png"
    _put(moto, key, page())
    response = function.response(events.eventbridge_event(key, len(page())))
    assert [r["state"] for r in response["records"]] == ["succeeded"]
    assert _object(moto, f"results/{job_id}/status.json")["state"] == "succeeded"


def test_presigned_upload_then_s3_event_then_job_status(function: ContainerFunction) -> None:
    request = json.dumps({"task": TASK, "filename": "big scan.png", "content_type": "image/png"})
    event = events.function_url_event("POST", "/v1/uploads", request, content_type="application/json")
    created = function.response(event)
    assert created["statusCode"] == 201, created["body"]
    upload = json.loads(created["body"])
    put = httpx.put(upload["upload"]["url"], content=page(), headers=upload["upload"]["headers"], timeout=30)
    assert put.status_code == 200, put.text
    response = function.response(events.s3_event(upload["key"], len(page())))
    assert [r["state"] for r in response["records"]] == ["succeeded"]
    done = function.response(events.function_url_event("GET", f"/v1/jobs/{upload['job_id']}"))
    job = json.loads(done["body"])
    assert done["statusCode"] == 200 and job["state"] == "succeeded"
    fetched = httpx.get(job["result_urls"]["result.json"], timeout=30)
    assert fetched.status_code == 200 and word_recall(fetched.json()["result"]["text"], PAGE_ID) >= 0.6


def test_function_logs_one_json_line_per_invocation(function: ContainerFunction) -> None:
    records = [r for r in function.container.log_records() if r.get("message") == "invocation"]
    assert records, function.container.logs()
    assert records[0]["cold_start"] is True and all(r["cold_start"] is False for r in records[1:])
    assert {r["source"] for r in records} >= {"http", "s3"}


def test_runs_as_the_image_user_with_a_read_only_root(function: ContainerFunction) -> None:
    assert function.container.running(), function.container.logs()
    (data,) = json.loads(podman("inspect", "--type", "container", function.container.name).stdout)
    assert data["HostConfig"]["ReadonlyRootfs"] is True
    assert data["Config"]["User"] not in ("", "0", "root")
    assert f"AWS_REGION={REGION}" in data["Config"]["Env"]


def test_store_is_only_under_tmp(function: ContainerFunction) -> None:
    """The pack landed in the image's DOCFN_MODEL_STORE under the tmpfs /tmp (nothing else is writable)."""
    listing = podman("exec", function.container.name, "sh", "-c", "ls -R /tmp/docfn/models | head -20").stdout
    assert "ocr-ppocrv6-tiny" in listing, listing
