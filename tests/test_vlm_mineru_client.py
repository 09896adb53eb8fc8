"""MinerU's own VLM client (mineru-vl-utils, http-client backend) against ``docfn serve --tasks vlm``
with the tiny random pack: the protocol end to end. The random model's answers are noise, so what is
checked is that every request is accepted, every answer parses in the client, and the server
received each request's sampling parameters exactly as the client sent them (its request log)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from docfn_testkit.mineru_client import (
    BLOCK_TOKENS,
    FULL_PAGE_BLOCKS,
    LAYOUT_TOKENS,
    block_types,
    chat_completions,
    crops,
    grid_blocks,
    http_client,
    sampling,
    vlm_batches,
)
from docfn_testkit.paths import DEVSET, ROOT
from docfn_testkit.servers import DocfnServer, free_port, shell_session

API_KEY = "test-key"


@pytest.fixture(scope="module")
def server(vlm_tiny_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocfnServer]:
    env = {
        "DOCFN_MODEL_STORE": str(tmp_path_factory.mktemp("store")),
        "DOCFN_TASKS": "vlm",
        "DOCFN_MODEL_URI": str(vlm_tiny_pack),
        "DOCFN_API_KEY": API_KEY,
    }
    instance = DocfnServer(env).start()
    try:
        yield instance
    finally:
        instance.stop()


def _received(server: DocfnServer) -> list[dict[str, Any]]:
    """Each chat completion's parameters as the server's request log line records them."""
    return chat_completions(line for line in server.stderr_text().splitlines() if line.startswith("{"))


def _sent(client: Any, params: Any) -> dict[str, Any]:
    """What the client sends for ``params``, built by the client itself, without the messages."""
    body = client.client.build_request_body(
        client.client.system_prompt, [b"\x89PNG"], "x", params, "png", None
    )
    body.pop("messages")
    return body


def test_two_step_extract_and_block_extraction_through_docfn(
    server: DocfnServer, monkeypatch: pytest.MonkeyPatch, vlm_tiny_pack: Path
) -> None:
    monkeypatch.setenv("MINERU_VL_API_KEY", API_KEY)  # the client sends it as a Bearer token
    by_type = sampling()
    client = http_client(server.url)
    page = Image.open(DEVSET / "001.png")
    model = client.client.model_name
    assert model.endswith("@" + vlm_tiny_pack.name)

    extracted = client.two_step_extract(page)
    assert isinstance(extracted, list)
    # Blocks as a layout step would give them: one request per block, sent concurrently (the
    # server's queue batches them), each with its type's prompt and parameters.
    blocks = [
        {"type": "text", "bbox": [0.1, 0.1, 0.9, 0.2], "angle": 0},
        {"type": "table", "bbox": [0.1, 0.3, 0.9, 0.6], "angle": 0},
        {"type": "equation", "bbox": [0.2, 0.7, 0.8, 0.75], "angle": 0},
        {"type": "title", "bbox": [0.1, 0.02, 0.6, 0.06], "angle": 0},
    ]
    result = client.extract_with_layout(page, blocks)
    assert [block.type for block in result] == ["text", "table", "equation", "title"]
    assert all(block.content is not None for block in result)

    received = _received(server)
    assert [line["status"] for line in received] == [200] * (1 + len(blocks))
    assert received[0]["params"] == {**_sent(client, by_type["[layout]"]), "model": model}
    expected = [
        by_type[t] if t in by_type else by_type["[default]"] for t in ("text", "table", "equation", "title")
    ]
    block_params = sorted(json.dumps(line["params"], sort_keys=True) for line in received[1:])
    assert block_params == sorted(
        json.dumps({**_sent(client, p), "model": model}, sort_keys=True) for p in expected
    )
    assert received[0]["completion_tokens"] <= LAYOUT_TOKENS
    assert all(line["completion_tokens"] <= BLOCK_TOKENS + 2 for line in received[1:])
    assert all(line["finish_reason"] in ("stop", "length") for line in received)


def test_a_full_page_of_blocks_at_the_clients_default_concurrency(
    server: DocfnServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``batch_content_extract`` on 48 crops and ``extract_with_layout`` on a 48-block layout, with
    the client's default concurrency (100 requests at once) and no retries: every block is answered
    and none is refused; the waiting requests shared the engine's batches."""
    monkeypatch.setenv("MINERU_VL_API_KEY", API_KEY)
    client = http_client(server.url)
    assert client.max_concurrency == 100  # the client's default, not lowered for docfn
    before = len(_received(server))
    batches_before = vlm_batches(server.url)

    blocks = crops(FULL_PAGE_BLOCKS)
    types = block_types(FULL_PAGE_BLOCKS)
    extracted = client.batch_content_extract(blocks, types)
    assert len(extracted) == FULL_PAGE_BLOCKS
    assert all(block is not None for block in extracted)

    page = Image.open(DEVSET / "002.png")
    result = client.extract_with_layout(page, grid_blocks(FULL_PAGE_BLOCKS))
    assert [block.type for block in result] == types
    assert all(block.content is not None for block in result)

    received = _received(server)[before:]
    assert len(received) == 2 * FULL_PAGE_BLOCKS
    assert [line["status"] for line in received] == [200] * (2 * FULL_PAGE_BLOCKS)
    # They waited together: far fewer batches than requests.
    after = vlm_batches(server.url)
    batches, sequences = after[0] - batches_before[0], after[1] - batches_before[1]
    assert sequences == 2 * FULL_PAGE_BLOCKS
    assert batches <= sequences / 2


def test_the_clients_streaming_call_and_text_first_order(
    server: DocfnServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mineru-vl-utils' own ``stream_predict`` (``stream: true``, OpenAI's SSE chunks) gives the
    answer ``predict`` gives; a client built with ``text_before_image=True`` is answered too."""
    from mineru_vl_utils.mineru_client import MinerUSamplingParams
    from mineru_vl_utils.vlm_client.http_client import HttpVlmClient

    monkeypatch.setenv("MINERU_VL_API_KEY", API_KEY)
    params = MinerUSamplingParams(presence_penalty=1.0, frequency_penalty=0.05, max_new_tokens=BLOCK_TOKENS)
    crop = crops(1)[0]
    client = HttpVlmClient(server_url=server.url, max_retries=0, allow_truncated_content=True, use_tqdm=False)
    whole = client.predict(crop, "\nText Recognition:", params)
    streamed = list(client.stream_predict(crop, "\nText Recognition:", params))
    assert "".join(streamed) == whole
    text_first = HttpVlmClient(
        server_url=server.url,
        max_retries=0,
        allow_truncated_content=True,
        use_tqdm=False,
        text_before_image=True,
    )
    assert isinstance(text_first.predict(crop, "\nText Recognition:", params), str)
    received = _received(server)[-3:]
    assert [line["status"] for line in received] == [200] * 3
    assert [line["params"].get("stream", False) for line in received] == [False, True, False]


def test_a_wrong_api_key_is_refused_before_anything_runs(
    server: DocfnServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mineru_vl_utils import MinerUClient

    monkeypatch.setenv("MINERU_VL_API_KEY", "wrong")
    with pytest.raises(Exception, match="401"):
        MinerUClient(backend="http-client", server_url=server.url, use_tqdm=False, max_retries=0)


def test_the_docs_try_it_commands_run(tmp_path: Path) -> None:
    """docs/vlm.md's laptop session as one shell: a tiny pack exported, the server started, the model
    listed, and MinerU's client through a whole page."""
    block = re.search(
        r"## Try it on a laptop.*?```sh\n(.*?)```", (ROOT / "docs" / "vlm.md").read_text(), re.S
    )
    assert block is not None
    script = block.group(1).replace("8080", str(free_port()))
    Image.open(DEVSET / "001.png").save(tmp_path / "page.png")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DOCFN_MODEL_STORE": str(tmp_path / "store"),
    }
    env.pop("MINERU_VL_API_KEY", None)
    status, text, err = shell_session(script, tmp_path, env, timeout=600)
    assert status == 0, err[-3000:]
    # The export's report, then (curl prints no newline) readyz's answer, the model list and the
    # client's output run together.
    decoder, end, printed = json.JSONDecoder(), 0, []
    while text[end:].lstrip().startswith("{"):
        value, end = decoder.raw_decode(text, len(text) - len(text[end:].lstrip()))
        printed.append(value)
    exported, ready, listed = printed
    assert exported["precision"] == "int8" and exported["fp32_decoder"]["exact_cases"] == 4
    assert ready["ready"] is True and listed["data"][0]["id"] == "vlm-tiny@vlm-tiny"
    assert text[end:].strip() == "[]"  # the client's blocks: none in the random model's layout answer
