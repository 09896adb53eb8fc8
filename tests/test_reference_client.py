"""The reference deployment's own client, unchanged, against a real ``docfn serve`` process.

It sends ``requests`` with urllib3's ``Retry(total=3, backoff_factor=1, status_forcelist=[502, 503,
504])``, a multipart ``image`` part and a free-text ``instruction``, and waits 30 s: the server's own
inference deadline (and every deployed front door's) must sit below that.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from docfn.core.settings import Settings
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import DocfnServer, running_server

CLIENT_TIMEOUT_SECONDS = 30  # what the reference client passes as timeout=


@pytest.fixture(scope="module")
def server(model_store: Path):  # type: ignore[no-untyped-def]
    yield from running_server(model_store, "ocr,parse")


def reference_session() -> requests.Session:
    """Exactly the reference client's session."""
    session = requests.Session()
    retry = Retry(total=3, backoff_factor=1, status_forcelist=[502, 503, 504])
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def test_reference_client_parses_with_an_instruction(server: DocfnServer) -> None:
    with reference_session() as session, SAMPLE_PAGE.open("rb") as image:
        response = session.post(
            f"{server.url}/parse",
            files={"image": image},
            data={"instruction": "提取表格数据"},
            timeout=CLIENT_TIMEOUT_SECONDS,
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == "parse"
    assert "Knuth describes" in body["result"]["markdown"]
    # No VLM pack serves parse: the instruction is accepted, not applied, and the answer says so.
    assert body["instruction"]["text"] == "提取表格数据"
    assert body["instruction"]["applied"] is False
    assert "not applied" in body["instruction"]["reason"]


@pytest.mark.parametrize("field", ["file", "image", "files"])
def test_every_users_field_name_is_read(server: DocfnServer, field: str) -> None:
    with reference_session() as session, SAMPLE_PAGE.open("rb") as image:
        response = session.post(
            f"{server.url}/v1/ocr", files={field: ("page.png", image, "image/png")}, timeout=30
        )
    assert response.status_code == 200, response.text
    assert "RaggedRight" in response.json()["result"]["text"]
    assert "instruction" not in response.json()  # nothing sent, nothing said


def test_a_form_without_a_file_part_names_the_accepted_fields(server: DocfnServer) -> None:
    with reference_session() as session:
        response = session.post(
            f"{server.url}/ocr",
            files={"document": ("page.png", b"\x89PNG", "image/png")},
            data={"instruction": "read it"},
            timeout=30,
        )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert all(name in message for name in ("'file'", "'image'", "'files'"))


def test_openapi_documents_the_field_names_and_instruction(server: DocfnServer) -> None:
    paths = requests.get(f"{server.url}/openapi.json", timeout=30).json()["paths"]
    form = paths["/v1/parse"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"file", "image", "files", "instruction"} <= set(form["properties"])


def test_the_inference_deadline_sits_below_the_clients_timeout() -> None:
    # The deployed front doors are checked against the same default where they are declared:
    # tests/infra/test_terraform.py (API Gateway, Lambda) and tests/knative/test_manifests.py.
    assert Settings().inference_timeout_seconds == 25 < CLIENT_TIMEOUT_SECONDS
