"""MinerU's API on docfn's parse, called the way MinerU's documentation calls it (``requests``
multipart), against a real ``docfn serve``: 2.x ``/file_parse`` and 4's ``/v1/file_parse``."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from docfn_testkit.docgen import pdf_from_images
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import DocfnServer, running_server

# What MinerU 2.x's docs send besides the files (form values are strings on the wire).
V2_FORM = {
    "backend": "pipeline",
    "parse_method": "auto",
    "lang_list": "ch",
    "formula_enable": "true",
    "table_enable": "true",
    "return_md": "true",
    "return_content_list": "true",
    "return_middle_json": "true",
    "return_images": "true",
    "start_page_id": "0",
    "end_page_id": "99999",
}


@pytest.fixture(scope="module")
def server(model_store: Path) -> Iterator[DocfnServer]:
    yield from running_server(model_store, "parse")


@pytest.fixture(scope="module")
def two_page_pdf(devset: Path) -> bytes:
    """The devset's figure page, then the sample page."""
    pages = [Image.open(path).convert("RGB") for path in (devset / "010.png", SAMPLE_PAGE)]
    return pdf_from_images(pages)


def _files(*named: tuple[str, bytes, str]) -> list[tuple[str, tuple[str, io.BytesIO, str]]]:
    return [("files", (name, io.BytesIO(data), media)) for name, data, media in named]


def test_v2_json_with_every_output(server: DocfnServer, devset: Path) -> None:
    files = _files(
        ("figure.png", (devset / "010.png").read_bytes(), "image/png"),
        ("sample-page.png", SAMPLE_PAGE.read_bytes(), "image/png"),
    )
    response = requests.post(f"{server.url}/file_parse", files=files, data=V2_FORM, timeout=300)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["backend"] == "pipeline" and body["version"]
    assert set(body["results"]) == {"figure", "sample-page"}
    page = body["results"]["sample-page"]
    assert "Knuth describes" in page["md_content"]
    blocks = json.loads(page["content_list"])  # JSON text, as MinerU sends it
    assert any(b["type"] == "text" for b in blocks)
    assert json.loads(page["middle_json"])["pdf_info"][0]["page_idx"] == 0
    figure = body["results"]["figure"]
    assert figure["images"], "the figure page has a cropped figure"
    for name, url in figure["images"].items():
        assert url.startswith("data:image/png;base64,")
        assert f"images/{name}" in figure["md_content"]


def test_v2_defaults_return_markdown_only(server: DocfnServer) -> None:
    files = _files(("sample-page.png", SAMPLE_PAGE.read_bytes(), "image/png"))
    response = requests.post(f"{server.url}/file_parse", files=files, timeout=300)
    assert response.status_code == 200, response.text
    assert set(response.json()["results"]["sample-page"]) == {"md_content"}


def test_v2_zip_and_page_selection(server: DocfnServer, two_page_pdf: bytes) -> None:
    form = {**V2_FORM, "response_format_zip": "true", "start_page_id": "1", "end_page_id": "1"}
    files = _files(("doc.pdf", two_page_pdf, "application/pdf"))
    response = requests.post(f"{server.url}/file_parse", files=files, data=form, timeout=300)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = set(archive.namelist())
        assert {"doc/doc.md", "doc/doc_content_list.json", "doc/doc_middle.json"} <= names
        middle = json.loads(archive.read("doc/doc_middle.json"))
        assert "Knuth describes" in archive.read("doc/doc.md").decode()
    assert [p["page_idx"] for p in middle["pdf_info"]] == [1]  # the second page only


def test_v2_errors_are_mineru_shaped(server: DocfnServer) -> None:
    files = _files(("notes.png", b"plain text, not an image", "image/png"))
    response = requests.post(f"{server.url}/file_parse", files=files, timeout=60)
    assert response.status_code in (400, 415)
    assert isinstance(response.json()["error"], str)
    past = requests.post(
        f"{server.url}/file_parse",
        files=_files(("page.png", SAMPLE_PAGE.read_bytes(), "image/png")),
        data={"start_page_id": "3", "end_page_id": "5"},
        timeout=60,
    )
    assert past.status_code == 400 and "start_page_id" in past.json()["error"]


def test_v4_json_with_page_range_and_output_formats(server: DocfnServer, two_page_pdf: bytes) -> None:
    params = {
        "response_format": "json",
        "page_range": "2",
        "output_formats": ["markdown", "middle_json", "structured_content"],
    }
    files = _files(("doc.pdf", two_page_pdf, "application/pdf"))
    response = requests.post(f"{server.url}/v1/file_parse", params=params, files=files, timeout=300)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed" and body["task_id"].startswith("task_")
    assert body["output_formats"] == params["output_formats"]
    (file,) = body["files"]
    assert file["name"] == "doc.pdf" and file["status"] == "completed" and file["page_range"] == "2"
    assert "Knuth describes" in file["content"]["markdown"]
    assert file["content"]["middle_json"]["pdf_info"][0]["page_idx"] == 1
    assert isinstance(file["content"]["structured_content"], list)


def test_v4_zip_and_raw_bytes(server: DocfnServer) -> None:
    response = requests.post(
        f"{server.url}/v1/file_parse",
        params={"response_format": "zip", "filename": "page.png"},
        data=SAMPLE_PAGE.read_bytes(),
        headers={"content-type": "application/octet-stream"},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-mineru-task-id"].startswith("task_")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert {"markdown.md", "middle_json.json", "structured_content.json"} <= set(archive.namelist())
        assert "Knuth describes" in archive.read("markdown.md").decode()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"output_formats": ["html"]}, "unsupported output format"),
        ({"page_range": "r3-r1"}, "page_range"),
        ({"response_format": "xml"}, "response_format"),
    ],
)
def test_v4_errors_are_mineru_shaped(server: DocfnServer, params: dict, message: str) -> None:
    files = _files(("page.png", SAMPLE_PAGE.read_bytes(), "image/png"))
    response = requests.post(f"{server.url}/v1/file_parse", params=params, files=files, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and message in error["message"]


def test_mineru_requests_get_the_request_log_line(model_store: Path) -> None:
    instance = DocfnServer({"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "parse"}).start()
    try:
        files = _files(("notes.png", b"plain text, not an image", "image/png"))
        requests.post(
            f"{instance.url}/file_parse", files=files, headers={"x-request-id": "mineru-1"}, timeout=60
        )
    finally:
        _, stderr = instance.stop()
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    line = next(r for r in records if r.get("request_id") == "mineru-1")
    assert line["task"] == "parse" and line["status"] in (400, 415) and line["error"]


def test_the_task_api_without_a_bucket_says_what_it_needs(server: DocfnServer) -> None:
    """MinerU 4's ``POST /v1/tasks`` keeps its tasks in the bucket (tests/test_mineru_tasks.py): a
    function without one answers 503 with Retry-After, in MinerU's error shape, naming the setting."""
    files = _files(("page.png", SAMPLE_PAGE.read_bytes(), "image/png"))
    response = requests.post(f"{server.url}/v1/tasks", files=files, timeout=60)
    assert response.status_code == 503 and response.headers["retry-after"]
    error = response.json()["error"]
    assert error["type"] == "api_error" and "DOCFN_BUCKET" in error["message"]
    assert requests.get(f"{server.url}/v1/tasks/{'0' * 32}", timeout=30).status_code == 503
