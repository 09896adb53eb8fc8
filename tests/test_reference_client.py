"""The reference deployment's own client, unchanged, against a real ``docfn serve`` process.

It sends ``requests`` with urllib3's ``Retry(total=3, backoff_factor=1, status_forcelist=[502, 503,
504])``, a multipart ``image`` part and a free-text ``instruction``, and waits 30 s: the server's own
inference deadline (and every deployed front door's) must sit below that.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from docfn.core.settings import Settings
from docfn_testkit.paths import DEVSET, SAMPLE_PAGE
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
    # No VLM serves parse here: the instruction is accepted, not applied, and the answer says why.
    assert body["instruction"]["text"] == "提取表格数据"
    assert body["instruction"]["applied"] is False
    assert "parse ran without a VLM" in body["instruction"]["reason"]


def test_an_instruction_to_a_task_without_a_vlm_says_why_it_was_not_applied(server: DocfnServer) -> None:
    with reference_session() as session, SAMPLE_PAGE.open("rb") as image:
        response = session.post(
            f"{server.url}/ocr", files={"image": image}, data={"instruction": "only the title"}, timeout=30
        )
    assert response.status_code == 200, response.text
    note = response.json()["instruction"]
    assert note == {"text": "only the title", "applied": False, "reason": note["reason"]}
    assert "ocr runs no VLM" in note["reason"]


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


# -- where a VLM answers, the instruction is its prompt --------------------------------------------

INSTRUCTION = "Describe this block in one sentence."


def _crop_png() -> bytes:
    """The display formula of mathtools page 4 (devset 001), as a block crop."""
    out = io.BytesIO()
    Image.open(DEVSET / "001.png").convert("RGB").crop((590, 1222, 745, 1285)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def vlm_server(model_store: Path, vlm_tiny_pack: Path):  # type: ignore[no-untyped-def]
    yield from running_server(model_store, "vlm", DOCFN_MODEL_URI=str(vlm_tiny_pack))


@pytest.fixture(scope="module")
def blocks_server(model_store: Path, vlm_tiny_pack: Path):  # type: ignore[no-untyped-def]
    """The block tasks and parse with a VLM pack (parse then sends formulas and charts to it)."""
    yield from running_server(
        model_store,
        "formula,chart,table,parse",
        DOCFN_VLM_MODEL_URI=str(vlm_tiny_pack),
        DOCFN_VLM_MAX_TOKENS="6",
    )


def _instructed(url: str, instruction: str = INSTRUCTION, **params: str) -> dict[str, Any]:
    """The reference client's request: a multipart image and an instruction (options in the query)."""
    with reference_session() as session:
        response = session.post(
            url,
            params=params,
            files={"image": ("block.png", _crop_png(), "image/png")},
            data={"instruction": instruction},
            timeout=CLIENT_TIMEOUT_SECONDS,
        )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _raw(url: str, **params: str) -> dict[str, Any]:
    response = requests.post(
        url, params=params, data=_crop_png(), headers={"content-type": "image/png"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize("path", ["/vlm", "/v1/vlm"])
def test_the_instruction_is_the_vlm_tasks_prompt(vlm_server: DocfnServer, path: str) -> None:
    instruction = f"{INSTRUCTION} ({path})"  # each path's first request is not a cache hit
    body = _instructed(f"{vlm_server.url}{path}", instruction, max_tokens="4")
    assert body["instruction"] == {"text": instruction, "applied": True}
    (page,) = body["result"]["pages"]
    # The same request with the instruction as the prompt option is the same request: a cache hit
    # of the same answer. The default prompt is another, shorter one.
    same = _raw(f"{vlm_server.url}/v1/vlm", prompt=instruction, max_tokens="4")
    assert same["cached"] is True and same["result"]["pages"] == [page]
    default = _raw(f"{vlm_server.url}/v1/vlm", max_tokens="4")
    assert default["result"]["pages"][0]["prompt_tokens"] < page["prompt_tokens"]
    assert "instruction" not in default


@pytest.mark.parametrize("task", ["formula", "chart"])
def test_the_instruction_replaces_a_block_tasks_prompt(blocks_server: DocfnServer, task: str) -> None:
    body = _instructed(f"{blocks_server.url}/{task}")
    assert body["instruction"] == {"text": INSTRUCTION, "applied": True}
    same = _raw(f"{blocks_server.url}/v1/{task}", prompt=INSTRUCTION)
    assert same["cached"] is True and same["result"] == body["result"]
    assert _raw(f"{blocks_server.url}/v1/{task}")["cached"] is False  # its own prompt: another key


def test_table_takes_the_instruction_only_where_the_vlm_reads_its_tables(blocks_server: DocfnServer) -> None:
    read_by_vlm = _instructed(f"{blocks_server.url}/table", recognizer="vlm")
    assert read_by_vlm["instruction"] == {"text": INSTRUCTION, "applied": True}
    classic = _instructed(f"{blocks_server.url}/table")
    assert classic["instruction"]["applied"] is False
    assert "recognizer=vlm" in classic["instruction"]["reason"]


def test_parse_with_vlm_blocks_says_why_the_instruction_is_not_its_prompt(blocks_server: DocfnServer) -> None:
    note = _instructed(f"{blocks_server.url}/parse")["instruction"]
    assert note["applied"] is False
    assert "chart, formula" in note["reason"] and "MinerU2.5 prompt" in note["reason"]


def test_a_prompt_option_and_another_instruction_are_refused(blocks_server: DocfnServer) -> None:
    with reference_session() as session:
        response = session.post(
            f"{blocks_server.url}/formula",
            params={"prompt": "something else"},
            files={"image": ("block.png", _crop_png(), "image/png")},
            data={"instruction": INSTRUCTION},
            timeout=CLIENT_TIMEOUT_SECONDS,
        )
    assert response.status_code == 422
    assert "send one of them" in response.json()["error"]["message"]
