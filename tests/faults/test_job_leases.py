"""Job leases: a claim renewed on a timer by conditional writes, so a slow healthy job keeps its job
and a run that lost its claim writes nothing.

The lease here is 1 s and one page of the job (two copies of the sample page side by side: 120 lines)
takes 1.3-1.7 s of OCR on 2 cores, quiet or loaded: a claim renewed only as pages end (as it once
was) lapses mid-page, the status reads ``interrupted`` and the second instance runs the job again.
Renewed every lease/3 in the background, it never lapses. (A single sample page takes 0.7-0.9 s on
a quiet machine: shorter than a 1.5 s lease, which made the job end before the duplicate arrived.)
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

from docfn_testkit import events
from docfn_testkit.docgen import pdf_from_images
from docfn_testkit.events import BUCKET
from docfn_testkit.load import figure
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import AWS_TEST_ENV, DocfnServer, S3Server, wait_until

LEASE = 1.0
PAGES = 6


def _instance(model_store: Path, s3: S3Server) -> DocfnServer:
    return DocfnServer(
        {
            **AWS_TEST_ENV,
            "DOCFN_TASKS": "ocr",
            "DOCFN_MODEL_STORE": str(model_store),
            "DOCFN_BUCKET": BUCKET,
            "DOCFN_S3_ENDPOINT_URL": s3.endpoint_url,
            "DOCFN_JOB_LEASE_SECONDS": str(LEASE),
        }
    )


def _long_page() -> Image.Image:
    """Two copies of the sample page side by side: twice its lines, so one page outlasts the lease."""
    page = Image.open(SAMPLE_PAGE).convert("RGB")
    wide = Image.new("RGB", (page.width * 2, page.height), "white")
    wide.paste(page, (0, 0))
    wide.paste(page, (page.width, 0))
    return wide


def _job_runs(log: str, job_id: str) -> int:
    """Request lines of this job's runs in a server's structured log (one per run, success or not)."""
    runs = 0
    for line in log.splitlines():
        try:
            fields = json.loads(line)
        except ValueError:
            continue
        if fields.get("job_id") == job_id and "input_key" in fields:
            runs += 1
    return runs


def test_two_processes_given_the_same_event_while_one_is_slow_give_one_result(
    s3_server: S3Server, model_store: Path
) -> None:
    s3 = s3_server.client()
    first, second = _instance(model_store, s3_server), _instance(model_store, s3_server)
    first.start()
    second.start()
    pdf = pdf_from_images([_long_page()] * PAGES)
    delivered: dict[str, httpx.Response] = {}
    try:
        with first.client() as client:
            job = client.post("/v1/uploads", json={"task": "ocr", "filename": "doc.pdf"}).json()
            s3.put_object(Bucket=BUCKET, Key=job["key"], Body=pdf)
            notification = json.dumps(events.s3_event(job["key"], len(pdf)))

            def deliver() -> None:
                with first.client(timeout=600) as own:
                    delivered["first"] = own.post("/v1/events", content=notification)

            worker = threading.Thread(target=deliver)
            started = time.monotonic()
            worker.start()
            wait_until(lambda: client.get(job["status_url"]).json()["state"] == "running", "the job to run")
            time.sleep(2 * LEASE)  # two leases into the job: a lease not renewed meanwhile has lapsed
            midway = client.get(job["status_url"]).json()
            with second.client() as other:
                duplicate = other.post("/v1/events", content=notification)
            still_running = worker.is_alive()
            worker.join(timeout=600)
            elapsed = time.monotonic() - started
            with second.client() as other:
                late = other.post("/v1/events", content=notification)
            final = client.get(job["status_url"]).json()
    finally:
        logs = [first.stop()[1], second.stop()[1]]
    assert midway["state"] == "running", midway  # never failed/interrupted while healthy
    # The second process was turned away, not given the job (a lapsed lease let it run it again).
    assert duplicate.status_code == 503, duplicate.text
    assert duplicate.json()["records"][0]["error"]["code"] == "job_in_progress"
    assert still_running, "the job ended before the duplicate arrived: make it longer"
    assert int(duplicate.headers["retry-after"]) > 0
    assert delivered["first"].status_code == 200, delivered["first"].text
    assert delivered["first"].json()["records"][0]["state"] == "succeeded"
    assert late.status_code == 200 and late.json()["records"][0]["state"] == "skipped"
    assert final["state"] == "succeeded"
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"results/{job['job_id']}/")["Contents"]
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in listed) == ["result.json", "status.json"]
    assert [_job_runs(log, job["job_id"]) for log in logs] == [1, 0]  # one run, by the first process
    figure("job_leases.slow_job_s", round(elapsed, 1))
    figure("job_leases.duplicate", f"{duplicate.status_code} job_in_progress")


def test_a_run_whose_claim_was_taken_over_stops_and_writes_nothing(
    s3_server: S3Server, model_store: Path
) -> None:
    """The claim is replaced under a running job (as an instance that found it expired would): the
    next renewal's If-Match fails, and the run stops without a result or a status of its own."""
    from docfn.adapters.wiring import build_service, upload_processor
    from docfn.core.settings import Settings
    from docfn.service.storage import claim_key
    from docfn.service.upload_jobs import ObjectRef

    settings = Settings(
        tasks=["ocr"],
        model_store=model_store,
        bucket=BUCKET,
        s3_endpoint_url=s3_server.endpoint_url,
        job_lease_seconds=0.6,
    )
    processor = upload_processor(build_service(settings))
    s3 = s3_server.client()
    pdf = pdf_from_images([Image.open(SAMPLE_PAGE).convert("RGB")] * 2)
    job = processor.create_upload("ocr", "doc.pdf")
    s3.put_object(Bucket=BUCKET, Key=job["key"], Body=pdf)
    rival = json.dumps({"owner": "rival", "input_sha256": "x", "lease_until": time.time() + 600}).encode()
    run = processor.service.run

    def taken_over_then_run(*args, **kwargs):  # type: ignore[no-untyped-def]
        s3.put_object(Bucket=BUCKET, Key=claim_key(job["job_id"]), Body=rival)
        time.sleep(settings.job_lease_seconds)  # a renewal tick or more: it finds the claim changed
        return run(*args, **kwargs)

    processor.service.run = taken_over_then_run  # type: ignore[method-assign]
    report = processor.process(ObjectRef(BUCKET, job["key"]))
    assert report.state == "failed" and report.error is not None
    assert report.error.code == "job_in_progress" and report.retryable
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"results/{job['job_id']}/")["Contents"]
    ]
    assert not any(key.endswith(("result.json", "result.md")) for key in keys), keys
    # The rival's claim is left as it is (not deleted by the loser), and the status is not "failed".
    claim = json.loads(s3.get_object(Bucket=BUCKET, Key=claim_key(job["job_id"]))["Body"].read())
    assert claim["owner"] == "rival"
    assert processor.current(job["job_id"]).state == "running"
