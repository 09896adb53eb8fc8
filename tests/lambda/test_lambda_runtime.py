"""The function image's handler under the real awslambdaric runtime client, event source by event source."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis

from docfn.tooling.publish import publish_pack
from docfn_testkit.events import (
    BUCKET,
    eventbridge_event,
    function_url_event,
    s3_event,
    sqs_event,
    sqs_notification,
)
from docfn_testkit.lambda_local import LambdaFunction, lambda_environment
from docfn_testkit.paths import OCR_PACK, OCR_PACK_VERSION, SAMPLE_PAGE
from docfn_testkit.servers import RedisServer, S3Server

PAGE = SAMPLE_PAGE.read_bytes()


def _status(s3: S3Server, job_id: str) -> dict[str, Any]:
    raw = s3.client().get_object(Bucket=BUCKET, Key=f"results/{job_id}/status.json")["Body"].read()
    return json.loads(raw)


def _result(s3: S3Server, job_id: str) -> dict[str, Any]:
    raw = s3.client().get_object(Bucket=BUCKET, Key=f"results/{job_id}/result.json")["Body"].read()
    return json.loads(raw)


def _put(s3: S3Server, key: str, data: bytes, content_type: str = "image/png") -> None:
    s3.client().put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=content_type)


def _response(function: LambdaFunction, event: dict[str, Any]) -> dict[str, Any]:
    invocation = function.invoke(event)
    assert invocation.outcome == "response", invocation.payload.decode()
    return invocation.json()


def test_function_url_post_of_a_real_page(lambda_function: LambdaFunction) -> None:
    event = function_url_event("POST", "/v1/ocr", PAGE, content_type="image/png", base64_body=True)
    first_call = lambda_function.invocations == 0
    invocation = lambda_function.invoke(event)
    assert invocation.outcome == "response", invocation.payload.decode()
    response = invocation.json()
    assert response["statusCode"] == 200, response["body"]
    body = json.loads(response["body"])
    assert "RaggedRight" in body["result"]["text"]
    # Lambda's request id is the request's id, in the header, the body and the log.
    assert response["headers"]["x-request-id"] == invocation.request_id == body["request_id"]
    assert response["headers"]["x-docfn-lambda-cold"] == ("1" if first_call else "0")

    again = _response(lambda_function, event)
    assert again["statusCode"] == 200
    assert again["headers"]["x-docfn-lambda-cold"] == "0"
    assert json.loads(again["body"])["cached"] is True  # the shared Redis cache answered

    records = lambda_function.log_records()
    invocations = [r for r in records if r.get("message") == "invocation" and r.get("source") == "http"]
    assert invocations[-1]["cold_start"] is False and invocations[-1]["status"] == 200
    assert any(
        r["cold_start"] is True and "init_import_ms" in r for r in records if r.get("message") == "invocation"
    )
    requests = [
        r for r in records if r.get("message") == "request" and r.get("request_id") == invocation.request_id
    ]
    assert requests and requests[0]["status"] == 200 and "cold" in requests[0]


def test_eager_init_downloads_the_pack_before_the_first_invocation_which_reports_it(
    aws_services: tuple[S3Server, RedisServer], model_store: Path, tmp_path: Path
) -> None:
    s3, redis = aws_services
    published = publish_pack(model_store / OCR_PACK / OCR_PACK_VERSION, BUCKET, endpoint_url=s3.endpoint_url)
    store = tmp_path / "store"  # empty: /tmp of a fresh execution environment
    env = lambda_environment(s3, redis, store, model_uri=published.uri, eager_load="1")
    function = LambdaFunction(env, tmp_path).start()
    try:
        # No invocation yet: init alone started the download, and the pack arrives verified.
        deadline = time.monotonic() + 120
        while not (store / OCR_PACK / OCR_PACK_VERSION / "manifest.json").exists():
            assert time.monotonic() < deadline and function.process.poll() is None, function.log()
            time.sleep(0.05)
        assert function.invocations == 0

        # Options no other test uses: the module's Redis must not answer from its cache.
        def event(min_confidence: str) -> dict[str, Any]:
            return function_url_event(
                "POST",
                "/v1/ocr",
                PAGE,
                content_type="image/png",
                base64_body=True,
                query=f"min_confidence={min_confidence}",
            )

        response = _response(function, event("0.501"))
        assert response["statusCode"] == 200, response["body"]
        body = json.loads(response["body"])
        # The container's first request reports the load it joined, and how long it waited for it.
        assert body["cold"] is True and "RaggedRight" in body["result"]["text"]
        assert {"fetch", "verify", "session_create", "warm_up", "load_wait", "first_inference"} <= set(
            body["timings_ms"]
        )
        assert "load_wait" in response["headers"]["server-timing"]
        again = json.loads(_response(function, event("0.502"))["body"])
        assert again["cold"] is False and "fetch" not in again["timings_ms"]
        (cold,) = [r for r in function.log_records() if r.get("message") == "invocation" and r["cold_start"]]
        assert cold["init_ms"] >= cold["init_import_ms"] > 0
    finally:
        function.stop()


def test_function_url_raw_body_and_payload_limit(lambda_function: LambdaFunction) -> None:
    # A raw (not base64) body: a JSON request to the jobs API with an unknown task.
    raw = _response(
        lambda_function,
        function_url_event(
            "POST", "/v1/uploads", '{"task": "nope", "filename": "a.png"}', content_type="application/json"
        ),
    )
    assert raw["statusCode"] == 404 and json.loads(raw["body"])["error"]["code"] == "not_found"

    # Above Lambda's 6 MB payload limit (no DOCFN_MAX_BODY_BYTES set): 413 pointing at the uploads API.
    big = PAGE + b"\0" * (6 * 1024 * 1024 + 1024 - len(PAGE))
    event = function_url_event("POST", "/v1/ocr", big, content_type="image/png", base64_body=True)
    response = _response(lambda_function, event)
    assert response["statusCode"] == 413
    error = json.loads(response["body"])["error"]
    assert error["code"] == "too_large" and "/v1/uploads" in error["message"]
    assert "6,291,456" in error["message"]


def test_s3_direct_with_encoded_key_then_redelivery(
    lambda_function: LambdaFunction, aws_services: tuple[S3Server, RedisServer]
) -> None:
    s3, redis_server = aws_services
    job_id = uuid.uuid4().hex
    key = f"uploads/ocr/{job_id}/my scan ü.png"
    _put(s3, key, PAGE)
    event = s3_event(key, len(PAGE))
    assert "my+scan+%C3%BC.png" in event["Records"][0]["s3"]["object"]["key"]

    response = _response(lambda_function, event)
    assert [r["state"] for r in response["records"]] == ["succeeded"]
    assert response["records"][0]["key"] == key  # decoded exactly once
    status = _status(s3, job_id)
    assert status["state"] == "succeeded" and status["error"] is None
    assert status["input_key"] == key and status["task"] == "ocr"
    assert status["result_keys"] == [f"results/{job_id}/result.json"]
    result = _result(s3, job_id)
    assert "RaggedRight" in result["result"]["text"] and result["input_sha256"] == status["input_sha256"]
    cache = redis.Redis.from_url(redis_server.url)
    assert any(status["input_sha256"].encode() in k for k in cache.keys("docfn:v1:ocr:*"))

    # At-least-once delivery: the same event again does no work and leaves the status untouched.
    again = _response(lambda_function, event)
    assert [r["state"] for r in again["records"]] == ["skipped"]
    assert _status(s3, job_id) == status


def test_sqs_batch_reports_only_the_bad_message(
    lambda_function: LambdaFunction, aws_services: tuple[S3Server, RedisServer]
) -> None:
    s3, _ = aws_services
    good_job, bad_job, missing_job = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    good_key = f"uploads/ocr/{good_job}/page one.png"
    bad_key = f"uploads/ocr/{bad_job}/truncated.png"
    _put(s3, good_key, PAGE)
    _put(s3, bad_key, PAGE[: len(PAGE) // 3])
    good_id, bad_id, missing_id = (str(uuid.uuid4()) for _ in range(3))
    event = sqs_event(
        [
            (good_id, sqs_notification(good_key, len(PAGE))),
            (bad_id, sqs_notification(bad_key, len(PAGE) // 3)),
            (missing_id, sqs_notification(f"uploads/ocr/{missing_job}/never-uploaded.png", 10)),
        ]
    )
    response = _response(lambda_function, event)
    assert response == {"batchItemFailures": [{"itemIdentifier": bad_id}, {"itemIdentifier": missing_id}]}
    assert _status(s3, good_job)["state"] == "succeeded"
    bad = _status(s3, bad_job)
    assert bad["state"] == "failed" and bad["error"]["code"] == "bad_input" and bad["result_keys"] == []
    assert _status(s3, missing_job)["error"]["code"] == "not_found"


def test_eventbridge_object_created(
    lambda_function: LambdaFunction, aws_services: tuple[S3Server, RedisServer]
) -> None:
    s3, _ = aws_services
    job_id = uuid.uuid4().hex
    key = f"uploads/ocr/{job_id}/scan 2 (copy)+ü.png"
    _put(s3, key, PAGE)
    response = _response(lambda_function, eventbridge_event(key, len(PAGE)))
    assert [r["state"] for r in response["records"]] == ["succeeded"]
    assert _status(s3, job_id)["state"] == "succeeded"
    assert "RaggedRight" in _result(s3, job_id)["result"]["text"]


def test_own_output_and_stray_keys_are_ignored(
    lambda_function: LambdaFunction, aws_services: tuple[S3Server, RedisServer]
) -> None:
    s3, _ = aws_services
    job_id = uuid.uuid4().hex
    keys = [f"results/{job_id}/result.json", f"results/{job_id}/status.json", "uploads/ocr/no-job-folder.png"]
    for key in keys:
        _put(s3, key, b"{}", "application/json")
    before = {o["Key"] for o in s3.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    for key in keys:
        response = _response(lambda_function, s3_event(key, 2))
        assert [r["state"] for r in response["records"]] == ["ignored"]
    after = {o["Key"] for o in s3.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    assert after == before  # nothing written: no result of a result, no re-trigger


def test_presigned_upload_then_event_then_job_status(
    lambda_function: LambdaFunction, aws_services: tuple[S3Server, RedisServer]
) -> None:
    s3, _ = aws_services
    request = json.dumps({"task": "ocr", "filename": "big scan ü.png", "content_type": "image/png"})
    created = _response(
        lambda_function, function_url_event("POST", "/v1/uploads", request, content_type="application/json")
    )
    assert created["statusCode"] == 201, created["body"]
    upload = json.loads(created["body"])
    job_id = upload["job_id"]
    assert upload["key"] == f"uploads/ocr/{job_id}/big scan ü.png"
    assert upload["upload"]["method"] == "PUT" and upload["upload"]["url"].startswith(s3.endpoint_url)
    assert upload["status_url"] == f"/v1/jobs/{job_id}"

    queued = _response(lambda_function, function_url_event("GET", f"/v1/jobs/{job_id}"))
    assert queued["statusCode"] == 200 and json.loads(queued["body"])["state"] == "queued"

    put = httpx.put(upload["upload"]["url"], content=PAGE, headers=upload["upload"]["headers"], timeout=30)
    assert put.status_code == 200, put.text
    response = _response(lambda_function, s3_event(upload["key"], len(PAGE)))
    assert [r["state"] for r in response["records"]] == ["succeeded"]

    done = _response(lambda_function, function_url_event("GET", f"/v1/jobs/{job_id}"))
    assert done["statusCode"] == 200
    job = json.loads(done["body"])
    assert job["state"] == "succeeded" and job["result_keys"] == [f"results/{job_id}/result.json"]
    fetched = httpx.get(job["result_urls"]["result.json"], timeout=30)
    assert fetched.status_code == 200 and "RaggedRight" in fetched.json()["result"]["text"]

    unknown = _response(lambda_function, function_url_event("GET", f"/v1/jobs/{uuid.uuid4().hex}"))
    assert unknown["statusCode"] == 404


def test_unsupported_event_is_an_invocation_error(lambda_function: LambdaFunction) -> None:
    invocation = lambda_function.invoke({"hello": "world"})
    assert invocation.outcome == "error"
    error = invocation.json()
    assert error["errorType"] == "ValueError" and "unsupported event" in error["errorMessage"]
    # The runtime keeps serving after a failed invocation.
    ok = _response(lambda_function, function_url_event("GET", "/healthz"))
    assert ok["statusCode"] == 200
    # The body is JSON text as sent, not base64: it parses as it is.
    assert ok["isBase64Encoded"] is False and json.loads(ok["body"])["status"] == "ok"


# The CloudWatch embedded metric format's structure (the "_aws" metadata and its directives), as
# AWS specifies it: what CloudWatch Logs needs to extract metrics from a log line.
EMF_SCHEMA = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": {"type": "string", "minLength": 1, "maxLength": 1024},
                            "Dimensions": {
                                "type": "array",
                                "items": {"type": "array", "items": {"type": "string"}, "maxItems": 30},
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "properties": {"Name": {"type": "string"}, "Unit": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def test_request_lines_carry_cloudwatch_embedded_metrics(lambda_function: LambdaFunction) -> None:
    import jsonschema

    ok = lambda_function.invoke(
        function_url_event("POST", "/v1/ocr", PAGE, content_type="image/png", base64_body=True)
    )
    refused = lambda_function.invoke(
        function_url_event("POST", "/v1/ocr", "plain text", content_type="text/plain")
    )
    lines = {
        r["request_id"]: r
        for r in lambda_function.log_records()
        if r.get("message") == "request" and r.get("request_id") in (ok.request_id, refused.request_id)
    }
    for line in lines.values():
        jsonschema.validate(line, EMF_SCHEMA)
        [directive] = line["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "docfn" and directive["Dimensions"] == [["task"]]
        assert isinstance(line["task"], str)  # every dimension is a member of the line
        for metric in directive["Metrics"]:  # every metric is a number (or EMF's list of them) beside it
            value = line[metric["Name"]]
            assert all(isinstance(v, int | float) for v in (value if isinstance(value, list) else [value]))
        # The fields a log search needs are in the same line.
        assert {"request_id", "task", "status", "duration_ms"} <= set(line)
    served, bad = lines[ok.request_id], lines[refused.request_id]
    assert _value(served["Requests"]) == 1 and _value(served["Errors"]) == 0
    assert _value(served["Duration"]) == served["duration_ms"]
    assert "input_sha256" in served
    assert bad["status"] == 415 and _value(bad["Errors"]) == 1 and _value(bad["ServerErrors"]) == 0
    # Written by Powertools' EMF provider, merged into the one request line (no second line).
    records = lambda_function.log_records()
    assert (
        sum(1 for r in records if r.get("message") == "request" and r.get("request_id") == ok.request_id) == 1
    )
    assert not any("_aws" in r for r in records if r.get("message") != "request")


def _value(member: float | list[float]) -> float:
    """An EMF metric member: one value, or Powertools' list of one."""
    if isinstance(member, list):
        [member] = member
    return member
