"""POST /v1/events: the Knative Eventing path (a CloudEvent whose data is the S3 notification) runs
the same job processing as the Lambda handler, through a real ``docfn serve`` process."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from docfn_testkit.events import BUCKET, eventbridge_event, s3_event
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import DocfnServer, S3Server

PAGE = SAMPLE_PAGE.read_bytes()


@pytest.fixture
def server(s3_server: S3Server, model_store: Path) -> Iterator[DocfnServer]:
    instance = DocfnServer(
        {
            "DOCFN_MODEL_STORE": str(model_store),
            "DOCFN_TASKS": "ocr",
            "DOCFN_BUCKET": BUCKET,
            "DOCFN_S3_ENDPOINT_URL": s3_server.endpoint_url,
        }
    ).start()
    yield instance
    instance.stop()


def _status(s3: S3Server, job_id: str) -> dict:
    return json.loads(
        s3.client().get_object(Bucket=BUCKET, Key=f"results/{job_id}/status.json")["Body"].read()
    )


def test_cloudevents_binary_and_structured_modes(server: DocfnServer, s3_server: S3Server) -> None:
    s3 = s3_server.client()
    first, second, bad = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    first_key, second_key = f"uploads/ocr/{first}/a b ü.png", f"uploads/ocr/{second}/page.png"
    for key, data in ((first_key, PAGE), (second_key, PAGE), (f"uploads/ocr/{bad}/x.png", PAGE[:500])):
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    ce_headers = {
        "ce-specversion": "1.0",
        "ce-type": "dev.docfn.upload.created",
        "ce-source": "docfn-uploads",
        "ce-docfntask": "ocr",
        "content-type": "application/json",
    }
    with server.client() as client:
        # Binary mode (what the Knative broker delivers): the body is the S3 notification.
        notification = s3_event(first_key, len(PAGE))
        response = client.post(
            "/v1/events", content=json.dumps(notification), headers={**ce_headers, "ce-id": "1"}
        )
        assert response.status_code == 200, response.text
        assert [r["state"] for r in response.json()["records"]] == ["succeeded"]
        assert _status(s3_server, first)["state"] == "succeeded"

        # Redelivery by the broker: acknowledged, nothing redone.
        again = client.post(
            "/v1/events", content=json.dumps(notification), headers={**ce_headers, "ce-id": "1"}
        )
        assert again.status_code == 200 and again.json()["records"][0]["state"] == "skipped"

        # Structured mode, data as a JSON string (the SQS message body, unparsed).
        structured = {
            "specversion": "1.0",
            "id": "2",
            "type": "dev.docfn.upload.created",
            "source": "docfn-uploads",
            "datacontenttype": "application/json",
            "data": json.dumps(eventbridge_event(second_key, len(PAGE))),
        }
        response = client.post(
            "/v1/events",
            content=json.dumps(structured),
            headers={"content-type": "application/cloudevents+json"},
        )
        assert response.status_code == 200, response.text
        assert _status(s3_server, second)["state"] == "succeeded"

        # An input that will never decode: 422, so the broker dead-letters it instead of retrying.
        response = client.post("/v1/events", content=json.dumps(s3_event(f"uploads/ocr/{bad}/x.png", 500)))
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "bad_input"
        assert response.json()["records"][0]["state"] == "failed"

        # The function's own output never re-triggers it; a non-event body is a bad request.
        ignored = client.post("/v1/events", content=json.dumps(s3_event(f"results/{first}/result.json", 10)))
        assert ignored.status_code == 200 and ignored.json()["records"][0]["state"] == "ignored"
        assert client.post("/v1/events", content=b'{"hello": 1}').status_code == 400


def test_uploads_need_a_bucket(model_store: Path) -> None:
    server = DocfnServer(
        {"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "ocr", "DOCFN_BUCKET": ""}
    ).start()
    try:
        with server.client() as client:
            response = client.post("/v1/uploads", json={"task": "ocr", "filename": "a.png"})
            assert response.status_code == 503 and "DOCFN_BUCKET" in response.json()["error"]["message"]
            assert response.headers["retry-after"] == "60"
    finally:
        server.stop()
