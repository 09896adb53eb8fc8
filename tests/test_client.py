"""``docfn.client`` and ``docfn run --url`` against real ``docfn serve`` processes (and moto's S3
server for uploads): typed results and errors, retries honouring Retry-After, large files through
``/v1/uploads`` and job polling, and the same CLI output remote as in-process."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from docfn.client import Client, TaskResult
from docfn.core.errors import BadOptions, NotFound
from docfn_testkit.cli import run_docfn
from docfn_testkit.docgen import pdf_from_images
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import DocfnServer, S3Server, running_server


@pytest.fixture(scope="module")
def server(model_store: Path) -> Iterator[DocfnServer]:
    yield from running_server(model_store, "ocr,parse")


def test_typed_results_and_errors(server: DocfnServer) -> None:
    with Client(server.url) as docfn:
        page = docfn.run("ocr", SAMPLE_PAGE)
        assert isinstance(page, TaskResult)
        assert page.task == "ocr" and "RaggedRight" in page.result["text"]
        assert len(page.input_sha256) == 64 and page.request_id
        again = docfn.run("ocr", SAMPLE_PAGE.read_bytes(), content_type="image/png")
        assert again.cached and again.input_sha256 == page.input_sha256
        with pytest.raises(BadOptions) as bad:
            docfn.run("ocr", SAMPLE_PAGE, options={"colour": "blue"})
        assert bad.value.code == "bad_options" and "colour" in bad.value.message
        with pytest.raises(NotFound):
            docfn.run("table", SAMPLE_PAGE)  # not served by this function


class RecordedSleep:
    """Sleeps for real, and remembers how long it was asked to."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


def test_retries_on_429_wait_what_retry_after_says(model_store: Path) -> None:
    env = {
        "DOCFN_MODEL_STORE": str(model_store),
        "DOCFN_TASKS": "ocr",
        "DOCFN_MAX_CONCURRENCY": "1",
        "DOCFN_MAX_QUEUE": "0",  # a second request while one runs: 429 + Retry-After
        "DOCFN_RETRY_AFTER_SECONDS": "1",
        # Only overload may answer here (429 + Retry-After): no deadline on a busy test machine.
        "DOCFN_INFERENCE_TIMEOUT_SECONDS": "600",
    }
    instance = DocfnServer(env).start()
    page = Image.open(SAMPLE_PAGE).convert("RGB")
    documents = [pdf_from_images([page] * 2), pdf_from_images([page] * 3)]  # distinct: no cache hit
    sleeps = [RecordedSleep(), RecordedSleep()]
    results: list[TaskResult] = []
    start = threading.Barrier(2)

    def call(index: int) -> None:
        with Client(instance.url, retries=30, sleep=sleeps[index]) as docfn:
            start.wait()
            results.append(docfn.run("ocr", documents[index], content_type="application/pdf"))

    try:
        threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        instance.stop()
    assert sorted(r.result["pages"][-1]["page"] for r in results) == [2, 3]
    waits = [w for s in sleeps for w in s.waits]
    assert waits and set(waits) == {1.0}  # the server's Retry-After, not the client's own backoff


def test_large_files_go_through_uploads_and_job_polling(model_store: Path, s3_server: S3Server) -> None:
    env = {
        "DOCFN_MODEL_STORE": str(model_store),
        "DOCFN_TASKS": "ocr",
        "DOCFN_BUCKET": "docfn-test",
        "DOCFN_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "DOCFN_WATCH_UPLOADS_SECONDS": "0.5",  # the local S3 server sends no events
    }
    instance = DocfnServer(env).start()
    try:
        # Anything above 100 kB counts as large here: the 271 kB sample page goes asynchronous.
        with Client(instance.url, upload_above_bytes=100_000, poll_seconds=0.5) as docfn:
            page = docfn.run("ocr", SAMPLE_PAGE, options={"min_confidence": "0.5"})
            job = docfn.job(page.job_id or "")
    finally:
        instance.stop()
    assert page.job_id and "RaggedRight" in page.result["text"]
    assert job.state == "succeeded" and "result.json" in job.result_urls


def _docfn_run(args: list[str], model_store: Path) -> subprocess.CompletedProcess[str]:
    return run_docfn("run", *args, env={"DOCFN_MODEL_STORE": str(model_store)})


@pytest.mark.parametrize(("task", "fmt"), [("ocr", "text"), ("parse", "md")])
def test_docfn_run_url_prints_what_in_process_prints(
    server: DocfnServer, model_store: Path, task: str, fmt: str
) -> None:
    local = _docfn_run([task, str(SAMPLE_PAGE), "--format", fmt], model_store)
    remote = _docfn_run([task, str(SAMPLE_PAGE), "--format", fmt, "--url", server.url], model_store)
    assert local.returncode == 0 and remote.returncode == 0, local.stderr + remote.stderr
    assert remote.stdout == local.stdout and remote.stdout.strip()


def test_docfn_run_url_reports_server_errors(server: DocfnServer, model_store: Path) -> None:
    done = _docfn_run(["ocr", str(SAMPLE_PAGE), "-o", "colour=blue", "--url", server.url], model_store)
    assert done.returncode == 1
    assert "unknown option(s) ['colour'] for task ocr" in done.stderr and "(bad_options)" in done.stderr
