"""MinerU 4's task API (``POST /v1/tasks`` → 202, ``GET /v1/tasks/{id}``, ``.../result``, ``DELETE``)
on a real ``docfn serve`` of parse, its jobs in a real S3 server (moto) run by the upload watcher.

The ``mineru`` 4.0.12 wheel has no client for this API (its ``MinerUApiParser`` speaks
``/v1/uploads`` + ``/v1/parse/jobs``), so the requests here are the shapes its server reads, from
``mineru.parser.task_api``: multipart ``files`` with the options in the query (``output_formats``
repeated), a raw ``application/octet-stream`` body with ``?filename=`` and ``sha256sum``, and a
JSON ``CreateJobRequest`` (``files[].source`` inline or url, ``callback {url, secret}``). The
callback lands on a loopback receiver; its signature is checked as a receiver would check it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
from PIL import Image

from docfn_testkit.docgen import pdf_from_images
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import AWS_TEST_ENV, DocfnServer, S3Server, wait_until

SECRET = "whsec-test"
PAGE = SAMPLE_PAGE.read_bytes()
TERMINAL = {"completed", "partial", "failed", "canceled"}


class _Receiver(BaseHTTPRequestHandler):
    """A caller's endpoint: records the callbacks POSTed to it, serves /page.png for url sources."""

    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:  # http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:  # http.server's name
        if self.path != "/page.png":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def server(model_store: Path) -> Iterator[DocfnServer]:
    """parse with a bucket on a local S3 server, which sends no events: the watcher runs uploads.
    Loopback is allowed (a laptop's setting) for the callback receiver and url sources."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in AWS_TEST_ENV.items():
            env.setenv(key, value)  # boto3's, for the bucket made here
        s3 = S3Server().start()
        try:
            s3.client().create_bucket(Bucket="docfn-test")
            instance = DocfnServer(
                {
                    **AWS_TEST_ENV,
                    "DOCFN_MODEL_STORE": str(model_store),
                    "DOCFN_TASKS": "parse",
                    "DOCFN_BUCKET": "docfn-test",
                    "DOCFN_S3_ENDPOINT_URL": s3.endpoint_url,
                    "DOCFN_WATCH_UPLOADS_SECONDS": "0.5",
                    "DOCFN_URL_ALLOWED_NETWORKS": "127.0.0.0/8",
                }
            ).start()
            try:
                yield instance
            finally:
                instance.stop()
        finally:
            s3.stop()


def _pdf(pages: int) -> bytes:
    page = Image.open(SAMPLE_PAGE).convert("RGB")
    return pdf_from_images([page] * pages)


def _files(*named: tuple[str, bytes, str]) -> list[tuple[str, tuple[str, io.BytesIO, str]]]:
    return [("files", (name, io.BytesIO(data), media)) for name, data, media in named]


def _created(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    task = response.json()
    assert task["status_url"] == f"/v1/tasks/{task['task_id']}"
    assert task["result_url"] == f"/v1/tasks/{task['task_id']}/result"
    assert task["links"] == {"self": task["status_url"], "cancel": task["status_url"]}
    return dict(task)


def _finished(server: DocfnServer, task: dict[str, Any]) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status = requests.get(f"{server.url}{task['status_url']}", timeout=30).json()
        return status if status["status"] in TERMINAL else None

    return wait_until(done, f"task {task['task_id']} to end", timeout=180, every=0.3)


def test_multipart_task_runs_on_the_job_store_and_answers_its_result(server: DocfnServer) -> None:
    params = {"output_formats": ["markdown", "structured_content"], "page_range": "2-3", "tier": "basic"}
    response = requests.post(
        f"{server.url}/v1/tasks",
        params=params,
        files=_files(("doc.pdf", _pdf(4), "application/pdf"), ("again.pdf", _pdf(3), "application/pdf")),
        timeout=60,
    )
    task = _created(response)
    assert task["status"] in ("queued", "running") and task["tier"] == "basic"
    assert [f["name"] for f in task["files"]] == ["doc.pdf", "again.pdf"]
    assert task["progress"] == {"completed": 0, "failed": 0, "total": 2}
    # Not ended: the result says so with 202 and the status.
    early = requests.get(f"{server.url}{task['result_url']}", timeout=30)
    assert early.status_code in (200, 202)
    if early.status_code == 202:
        assert early.json()["task_id"] == task["task_id"]

    status = _finished(server, task)
    assert status["status"] == "completed"
    assert status["progress"] == {"completed": 2, "failed": 0, "total": 2}
    assert status["started_at"] and status["finished_at"] >= status["created_at"]
    result = requests.get(f"{server.url}{task['result_url']}", timeout=30)
    assert result.status_code == 200, result.text
    for file in result.json()["files"]:
        assert file["status"] == "completed" and file["page_range"] == "2-3"
        assert set(file["content"]) == {"markdown", "structured_content"}
        assert "Knuth describes" in file["content"]["markdown"]
        assert {block["page_idx"] for block in file["content"]["structured_content"]} == {1, 2}
        assert file["parse"]["model_used"] and file["parse"]["parser_version"].startswith("docfn-")


def test_zip_results_hold_each_files_archive(server: DocfnServer) -> None:
    one = _created(
        requests.post(
            f"{server.url}/v1/tasks",
            params={"output_formats": ["markdown", "zip"]},
            files=_files(("page.png", PAGE, "image/png")),
            timeout=60,
        )
    )
    two = _created(
        requests.post(
            f"{server.url}/v1/tasks",
            params={"output_formats": ["zip"]},
            files=_files(("a.png", PAGE, "image/png"), ("b.pdf", _pdf(1), "application/pdf")),
            timeout=60,
        )
    )
    for task in (one, two):
        assert _finished(server, task)["status"] == "completed"
    archive = requests.get(f"{server.url}{one['result_url']}", params={"response_format": "zip"}, timeout=30)
    assert archive.status_code == 200 and archive.headers["x-mineru-task-status"] == "completed"
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert {"markdown.md", "middle_json.json", "structured_content.json"} <= set(names)
    both = zipfile.ZipFile(
        io.BytesIO(requests.get(f"{server.url}{two['result_url']}?response_format=zip").content)
    )
    assert json.loads(both.read("manifest.json"))["task_id"] == two["task_id"]
    assert {"0001/markdown.md", "0002/markdown.md"} <= set(both.namelist())
    # A task that did not ask for zip has none to give (MinerU: 400).
    plain = _created(requests.post(f"{server.url}/v1/tasks", files=_files(("p.png", PAGE, "image/png"))))
    _finished(server, plain)
    refused = requests.get(f"{server.url}{plain['result_url']}?response_format=zip", timeout=30)
    assert refused.status_code == 400 and "output_formats" in refused.json()["error"]["message"]


def test_a_cached_sha256sum_is_answered_without_reading_the_body(server: DocfnServer) -> None:
    """MinerU's raw upload with ``sha256sum``: a file parsed before is answered from docfn's result
    cache at once. The body sent is the right length but not the file: the answer proves it was not
    read (a read body would fail its hash)."""
    page = _pdf(2)
    sha = hashlib.sha256(page).hexdigest()
    raw = {"Content-Type": "application/octet-stream"}
    first = _created(
        requests.post(
            f"{server.url}/v1/tasks", params={"filename": "doc.pdf", "sha256sum": sha}, data=page, headers=raw
        )
    )
    assert _finished(server, first)["status"] == "completed"

    response = requests.post(
        f"{server.url}/v1/tasks",
        params={"filename": "same.pdf", "sha256sum": sha},
        data=b"\0" * len(page),
        headers=raw,
        timeout=60,
    )
    again = _created(response)
    assert again["status"] == "completed" and response.headers["connection"] == "close"
    a = requests.get(f"{server.url}{first['result_url']}", timeout=30).json()["files"][0]["content"]
    b = requests.get(f"{server.url}{again['result_url']}", timeout=30).json()["files"][0]["content"]
    assert a == b

    def post(sha256sum: str, body: bytes, **headers: str) -> requests.Response:
        params = {"filename": "doc.pdf", "sha256sum": sha256sum}
        return requests.post(f"{server.url}/v1/tasks", params=params, data=body, headers={**raw, **headers})

    short = post(sha, b"\0" * (len(page) - 1))
    assert short.status_code == 400 and short.json()["error"]["code"] == "upload_size_mismatch"
    unknown = hashlib.sha256(b"never parsed").hexdigest()
    mismatch = post(unknown, page)
    assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == "file_hash_mismatch"


def test_json_sources_and_a_signed_callback(server: DocfnServer, receiver: str) -> None:
    _Receiver.received.clear()
    body = {
        "files": [
            {"source": {"type": "inline", "name": "page.png", "data": base64.b64encode(PAGE).decode()}},
            {"source": {"type": "url", "url": f"{receiver}/page.png"}, "page_range": "1"},
        ],
        "ocr_mode": "ocr",
        "output_formats": ["markdown"],
        "callback": {"url": f"{receiver}/hook", "secret": SECRET},
    }
    task = _created(requests.post(f"{server.url}/v1/tasks", json=body, timeout=60))
    assert [f["name"] for f in task["files"]] == ["page.png", "page.png"]
    final = _finished(server, task)
    assert final["status"] == "completed"

    headers, sent = wait_until(lambda: _Receiver.received[0] if _Receiver.received else None, "the callback")
    timestamp, signature = (part.split("=", 1)[1] for part in headers["X-Docfn-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + sent, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    assert abs(time.time() - int(timestamp)) < 300
    assert headers["X-MinerU-Task-Id"] == task["task_id"]
    payload = json.loads(sent)
    assert payload == final
    time.sleep(1.5)  # the watcher's next polls: still one callback
    assert len(_Receiver.received) == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"callback": {"url": "http://169.254.169.254/hook"}}, "bad_input"),  # metadata: never
        ({"callback": {"url": "http://10.1.2.3/hook"}}, "bad_input"),  # private, not allowed here
        ({"files": [{"source": {"type": "file_id", "file_id": "f1"}}]}, "unsupported_source"),
        ({"files": [{"source": {"type": "local", "path": "/etc/passwd"}}]}, "unsupported_source"),
        ({"output_formats": ["docx"]}, "bad_options"),
        ({"files": [{"source": {"type": "inline", "name": "x", "data": "AA"}, "page_range": "r3-r1"}]}, ""),
    ],
)
def test_json_requests_docfn_cannot_honour_are_refused(
    server: DocfnServer, change: dict[str, Any], code: str
) -> None:
    body = {
        "files": [{"source": {"type": "inline", "name": "p.png", "data": base64.b64encode(PAGE).decode()}}]
    }
    response = requests.post(f"{server.url}/v1/tasks", json={**body, **change}, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and (not code or error["code"] == code)


def test_request_shapes_are_checked_as_mineru_checks_them(server: DocfnServer) -> None:
    url = f"{server.url}/v1/tasks"
    raw = {"Content-Type": "application/octet-stream"}
    page = _files(("p.png", PAGE, "image/png"))
    cases = [
        (requests.post(url, data=PAGE, headers=raw), 400, "filename is required"),
        (
            requests.post(url, params={"sha256sum": "0" * 64}, files=page),
            400,
            "raw",
        ),
        (
            requests.post(url, files=_files(("p.png", PAGE, "image/png")), data={"tier": "basic"}),
            400,
            "files",
        ),
        (requests.post(url, params={"tier": "basic"}, json={"files": []}), 400, "request body"),
        (requests.post(url, data=b"x", headers={"Content-Type": "text/plain"}), 415, "multipart"),
        (requests.get(f"{url}/{'0' * 32}"), 404, "no task"),
    ]
    for response, status, says in cases:
        assert response.status_code == status, response.text
        assert says in response.json()["error"]["message"]
    assert requests.get(f"{url}/{'0' * 32}").json()["error"]["code"] == "job_not_found"


def test_a_failed_file_makes_the_task_partial_and_a_canceled_task_ends_there(server: DocfnServer) -> None:
    mixed = _created(
        requests.post(
            f"{server.url}/v1/tasks",
            files=_files(("page.png", PAGE, "image/png"), ("notes.txt", b"not a document", "text/plain")),
            timeout=60,
        )
    )
    assert _finished(server, mixed)["status"] == "partial"
    result = requests.get(f"{server.url}{mixed['result_url']}", timeout=30)
    assert result.status_code == 200
    good, bad = result.json()["files"]
    assert good["status"] == "completed" and "Knuth describes" in good["content"]["markdown"]
    assert bad["status"] == "failed" and bad["content"] == {} and bad["error"]["code"]

    long = _created(
        requests.post(
            f"{server.url}/v1/tasks", files=_files(("long.pdf", _pdf(12), "application/pdf")), timeout=60
        )
    )
    canceled = requests.delete(f"{server.url}{long['status_url']}", timeout=30)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert requests.get(f"{server.url}{long['result_url']}", timeout=30).status_code == 409
    again = requests.delete(f"{server.url}{long['status_url']}", timeout=30)
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_already_terminal"
    # A finished task cannot be canceled either.
    done = requests.delete(f"{server.url}{mixed['status_url']}", timeout=30)
    assert done.status_code == 409
