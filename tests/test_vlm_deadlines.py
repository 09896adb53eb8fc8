"""Deadlines stop work: a chat completion past DOCFN_VLM_TIMEOUT_SECONDS gets 504 and its sequence
leaves the engine's batch at the next decode step (the decode-step counter stops), while a request
decoding beside it is answered in full; a client that disconnects cancels its sequence. On the tiny
random pack, in process and behind ``docfn serve``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from docfn.core import metrics
from docfn_testkit.chat import API_KEY, AUTH, app_client, chat_body
from docfn_testkit.servers import DocfnServer, running_server, scrape_metric, wait_until

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def client(vlm_tiny_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    store = tmp_path_factory.mktemp("store")
    yield from app_client(
        model_uri=str(vlm_tiny_pack), model_store=store, api_key=API_KEY, vlm_timeout_seconds=TIMEOUT
    )


def _steps() -> float:
    return metrics.VLM_DECODE_STEPS.collect()[0].samples[0].value


def test_a_late_request_gets_504_and_stops_decoding_while_its_neighbour_completes(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    endless = chat_body(max_tokens=4096, max_completion_tokens=4096)
    short = chat_body(max_tokens=8, max_completion_tokens=8)
    client.post("/v1/chat/completions", json=short, headers=AUTH)  # loads the pack
    engine = client.app.state.service.task("vlm").task.engine  # type: ignore[attr-defined]
    # The random model would meet a stop token within a few hundred tokens: without one, only the
    # deadline ends the long request (4096 tokens take seconds here).
    monkeypatch.setattr(engine.model, "stop_tokens", frozenset())
    alone = client.post("/v1/chat/completions", json=short, headers=AUTH).json()
    with ThreadPoolExecutor(2) as pool:
        started = time.monotonic()
        late = pool.submit(client.post, "/v1/chat/completions", json=endless, headers=AUTH)
        time.sleep(0.3)  # the short one joins the long one's running batch
        beside = pool.submit(client.post, "/v1/chat/completions", json=short, headers=AUTH)
        assert beside.result().status_code == 200
        assert beside.result().json()["choices"] == alone["choices"]
        answer = late.result()
    assert answer.status_code == 504, answer.text
    assert answer.json()["error"]["code"] == "deadline_exceeded"
    assert time.monotonic() - started < TIMEOUT + 1.5
    # The sequence left the batch: no more decoding once it was answered.
    steps = _steps()
    time.sleep(0.5)
    assert _steps() == steps
    assert not engine._batch and not engine._queue  # the worker is idle


@pytest.fixture(scope="module")
def server(vlm_tiny_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocfnServer]:
    env = {"DOCFN_MODEL_URI": str(vlm_tiny_pack), "DOCFN_API_KEY": API_KEY}
    yield from running_server(tmp_path_factory.mktemp("store"), "vlm", **env)


def _cancelled(server: DocfnServer) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    return scrape_metric(text, "docfn_vlm_finished_total", reason="cancelled") or 0.0


def test_a_client_that_disconnects_cancels_its_sequence(server: DocfnServer) -> None:
    """uvicorn tells the route its client left: streamed (the stream's task is cancelled) or not (the
    route polls the connection while it waits), the sequence leaves the batch at the next step."""
    # Without MinerU's penalties the random model runs ~1400 tokens before its stop token: longer
    # than either client stays.
    body = chat_body(max_tokens=4096, max_completion_tokens=4096, presence_penalty=0.0,
                     frequency_penalty=0.0, vllm_xargs=None)  # fmt: skip
    url = f"{server.url}/v1/chat/completions"
    assert httpx.post(url, json={**body, "max_tokens": 2}, headers=AUTH, timeout=60).status_code == 200
    before = _cancelled(server)
    with httpx.stream("POST", url, json={**body, "stream": True}, headers=AUTH, timeout=60) as response:
        assert response.status_code == 200
        next(response.iter_lines())  # the first event, then the client goes
    wait_until(lambda: _cancelled(server) == before + 1, "the streamed sequence cancelled", timeout=10)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url, json=body, headers=AUTH, timeout=httpx.Timeout(60, read=0.3))
    wait_until(lambda: _cancelled(server) == before + 2, "the waiting sequence cancelled", timeout=10)
