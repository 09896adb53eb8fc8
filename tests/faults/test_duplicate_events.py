"""At-least-once delivery: every event delivered twice, at once, to two instances (two services and
processors over the same bucket, as two containers would be). Exactly one runs the job, one result."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from PIL import Image

from docfn_testkit.concurrency import Concurrency
from docfn_testkit.inputs import image_bytes
from docfn_testkit.load import figure
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import S3Server

BUCKET = "docfn-test"


def _instance(model_store: Path, s3: S3Server):  # type: ignore[no-untyped-def]
    from docfn.adapters.wiring import build_service, upload_processor
    from docfn.core.settings import Settings

    settings = Settings(
        tasks=["ocr"], model_store=model_store, bucket=BUCKET, s3_endpoint_url=s3.endpoint_url
    )
    return upload_processor(build_service(settings))


def test_two_instances_racing_on_every_event_give_one_result(s3_server: S3Server, model_store: Path) -> None:
    from docfn.service.upload_jobs import ObjectRef

    first, second = _instance(model_store, s3_server), _instance(model_store, s3_server)
    runs = Concurrency()
    for processor in (first, second):
        processor.service.run = runs.wrap(processor.service.run)
    page = Image.open(SAMPLE_PAGE).convert("RGB")
    jobs = []
    for seed in range(2):
        page.putpixel((seed, 0), (seed, 0, 0))  # a distinct input per job: no cache hit
        job = first.create_upload("ocr", "page.png")
        s3_server.client().put_object(Bucket=BUCKET, Key=job["key"], Body=image_bytes(page, "PNG"))
        jobs.append(job)

    reports: dict[str, list] = {job["job_id"]: [] for job in jobs}
    for job in jobs:  # each event reaches both instances at the same moment
        ref = ObjectRef(BUCKET, job["key"])
        start = threading.Barrier(2)

        def deliver(processor, ref=ref, job_id=job["job_id"], start=start) -> None:  # type: ignore[no-untyped-def]
            start.wait()
            reports[job_id].append(processor.process(ref, request_id=uuid.uuid4().hex))

        threads = [threading.Thread(target=deliver, args=(p,)) for p in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        # ... and is delivered twice more later, once to each: both acknowledged, nothing redone.
        for processor in (first, second):
            reports[job["job_id"]].append(processor.process(ref))

    s3 = s3_server.client()
    outcomes = []
    for job in jobs:
        raced, late = reports[job["job_id"]][:2], reports[job["job_id"]][2:]
        states = sorted(report.state for report in raced)
        outcomes.append(states)
        # One ran it; the other either found it running (503 job_in_progress: the queue delivers it
        # again later) or already done (skipped).
        assert states in (["failed", "succeeded"], ["skipped", "succeeded"]), states
        loser = next(report for report in raced if report.state != "succeeded")
        if loser.state == "failed":
            assert loser.error is not None and loser.error.code == "job_in_progress" and loser.retryable
        assert [report.state for report in late] == ["skipped", "skipped"]
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"results/{job['job_id']}/")["Contents"]
        assert sorted(o["Key"].rsplit("/", 1)[1] for o in listed) == ["result.json", "status.json"]
        assert first.job(job["job_id"])["state"] == "succeeded"
    assert runs.calls == len(jobs)  # the task ran once per job, never twice
    figure("duplicates.raced_states", outcomes)
