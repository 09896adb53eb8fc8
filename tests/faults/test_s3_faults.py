"""The object store goes away: during a cold start (the model pack fetch) and in the middle of an
upload job. Callers get 503 + Retry-After, and everything recovers once S3 is back, no restart."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
from PIL import Image

from docfn_testkit import events
from docfn_testkit.docgen import pdf_from_images
from docfn_testkit.events import BUCKET
from docfn_testkit.load import figure
from docfn_testkit.paths import OCR_PACK, OCR_PACK_VERSION, SAMPLE_PAGE
from docfn_testkit.servers import AWS_TEST_ENV, DocfnServer, SwitchableS3, wait_until

TINY = Path(OCR_PACK) / OCR_PACK_VERSION


def test_s3_down_during_a_cold_start(switchable_s3: SwitchableS3, model_store: Path, tmp_path: Path) -> None:
    from docfn.tooling.publish import publish_pack

    published = publish_pack(model_store / TINY, BUCKET, endpoint_url=switchable_s3.endpoint_url)
    server = DocfnServer(
        {
            **AWS_TEST_ENV,
            "DOCFN_TASKS": "ocr",
            "DOCFN_MODEL_STORE": str(tmp_path / "store"),
            "DOCFN_MODEL_URI": published.uri,
            "DOCFN_S3_ENDPOINT_URL": switchable_s3.endpoint_url,
            "K_SERVICE": "docfn-ocr",  # a deployed function: packs come from S3 only
        }
    ).start()
    page = SAMPLE_PAGE.read_bytes()
    try:
        with server.client() as client:
            switchable_s3.down()
            refused = client.post("/v1/ocr", content=page, headers={"content-type": "image/png"})
            switchable_s3.up()
            served = client.post("/v1/ocr", content=page, headers={"content-type": "image/png"})
    finally:
        server.stop()
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["retry-after"]) > 0
    assert "model store is unreachable" in refused.json()["error"]["message"]
    assert served.status_code == 200 and served.json()["cold"] is True  # the next request recovered
    assert "RaggedRight" in served.json()["result"]["text"]
    seconds = refused.elapsed.total_seconds()
    figure("s3_cold_start.refused", f"{refused.status_code} Retry-After {refused.headers['retry-after']}")
    figure("s3_cold_start.refused_after_s", round(seconds, 2))


def test_s3_down_in_the_middle_of_an_upload_job(switchable_s3: SwitchableS3, model_store: Path) -> None:
    s3 = switchable_s3.client()
    server = DocfnServer(
        {
            **AWS_TEST_ENV,
            "DOCFN_TASKS": "ocr",
            "DOCFN_MODEL_STORE": str(model_store),
            "DOCFN_BUCKET": BUCKET,
            "DOCFN_S3_ENDPOINT_URL": switchable_s3.endpoint_url,
            "DOCFN_JOB_LEASE_SECONDS": "4",
        }
    ).start()
    page = Image.open(SAMPLE_PAGE).convert("RGB")
    pdf = pdf_from_images([page] * 3)  # seconds of work: S3 goes down while it runs
    delivered: dict[str, httpx.Response] = {}
    try:
        with server.client() as client:
            job = client.post("/v1/uploads", json={"task": "ocr", "filename": "doc.pdf"}).json()
            s3.put_object(Bucket=BUCKET, Key=job["key"], Body=pdf)
            notification = json.dumps(events.s3_event(job["key"], len(pdf)))

            def deliver() -> None:
                with server.client() as own:
                    delivered["first"] = own.post("/v1/events", content=notification)

            worker = threading.Thread(target=deliver)
            worker.start()
            wait_until(lambda: client.get(job["status_url"]).json()["state"] == "running", "the job to run")
            switchable_s3.down()
            worker.join(timeout=300)
            switchable_s3.up()
            # Its lease runs out: the job reads failed (interrupted), never "running" for ever.
            interrupted = wait_until(
                lambda: (body := client.get(job["status_url"]).json())["state"] == "failed" and body,
                "the interrupted job to read failed",
            )
            # The broker delivers again (it got a 503): this time the job completes, once.
            again = client.post("/v1/events", content=notification)
            final = client.get(job["status_url"]).json()
    finally:
        server.stop()
    first = delivered["first"]
    assert first.status_code == 503 and int(first.headers["retry-after"]) > 0, first.text
    assert first.json()["records"][0]["state"] == "failed"
    assert interrupted["error"]["code"] == "interrupted"
    assert again.status_code == 200 and again.json()["records"][0]["state"] == "succeeded"
    assert final["state"] == "succeeded" and len(final["result_keys"]) == 1
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"results/{job['job_id']}/")
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in listed["Contents"]) == ["result.json", "status.json"]
    result = json.loads(s3.get_object(Bucket=BUCKET, Key=final["result_keys"][0])["Body"].read())
    assert len(result["result"]["pages"]) == 3
    figure("s3_mid_job.first_delivery", f"{first.status_code} {first.json()['error']['code']}")
