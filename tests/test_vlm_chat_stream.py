"""What the chat API takes besides MinerU's defaults, in process on the tiny random pack: ``stream``
(OpenAI's server-sent ``chat.completion.chunk`` events, read raw as the ``openai`` SDK does), ``stop``
strings, ``n`` and text before the image. MinerU's own streaming call runs against a real server in
tests/test_vlm_mineru_client.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from docfn_testkit.chat import API_KEY, AUTH, app_client, chat_body, data_url, text_crop

MAX_TOKENS = 12


@pytest.fixture(scope="module")
def client(vlm_tiny_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    store = tmp_path_factory.mktemp("store")
    yield from app_client(model_uri=str(vlm_tiny_pack), model_store=store, api_key=API_KEY)


def _ask(client: httpx.Client, **change: Any) -> dict[str, Any]:
    body = chat_body(max_tokens=MAX_TOKENS, max_completion_tokens=MAX_TOKENS, **change)
    answer = client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _events(client: httpx.Client, **change: Any) -> list[dict[str, Any] | str]:
    """The stream's events as an OpenAI client reads them: each ``data:`` line's JSON, or "[DONE]"."""
    body = chat_body(max_tokens=MAX_TOKENS, max_completion_tokens=MAX_TOKENS, stream=True, **change)
    events: list[dict[str, Any] | str] = []
    with client.stream("POST", "/v1/chat/completions", json=body, headers=AUTH) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    assert text.endswith("\n\n")
    for event in text.split("\n\n")[:-1]:
        assert event.startswith("data: "), event
        data = event.removeprefix("data: ")
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_a_streamed_answer_is_the_whole_answer_in_openai_chunks(client: httpx.Client) -> None:
    whole = _ask(client)
    events = _events(client)
    assert events[-1] == "[DONE]"
    chunks = [event for event in events[:-1] if isinstance(event, dict)]
    assert len(chunks) == len(events) - 1
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1 and chunks[0]["model"] == whole["model"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    # Only the last chunk finishes, with the finish reason the whole answer has.
    reasons = [chunk["choices"][0]["finish_reason"] for chunk in chunks]
    assert reasons[:-1] == [None] * (len(chunks) - 1)
    assert reasons[-1] == whole["choices"][0]["finish_reason"]
    content = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
    assert content == whole["choices"][0]["message"]["content"]
    assert all("usage" not in chunk for chunk in chunks)


def test_include_usage_ends_the_stream_with_a_usage_chunk(client: httpx.Client) -> None:
    whole = _ask(client)
    events = _events(client, stream_options={"include_usage": True})
    *chunks, usage, done = events
    assert done == "[DONE]"
    assert isinstance(usage, dict) and usage["choices"] == [] and usage["usage"] == whole["usage"]
    assert all(isinstance(chunk, dict) and chunk["usage"] is None for chunk in chunks)


def test_the_answer_is_cut_before_the_first_stop_string(client: httpx.Client) -> None:
    text = _ask(client)["choices"][0]["message"]["content"]
    assert len(text) >= 4, text  # the random model's noise: long enough to cut
    stop = text[2:4]
    first = text.find(stop)
    for given in (stop, ["never in the answer", stop]):
        answer = _ask(client, stop=given)
        (choice,) = answer["choices"]
        assert choice["message"]["content"] == text[:first]
        assert choice["finish_reason"] == "stop"
    # A stop string the answer never holds changes nothing.
    unchanged = _ask(client, stop="never in the answer")["choices"][0]["message"]["content"]
    assert unchanged == text
    # Streamed, the same cut.
    chunks = [e for e in _events(client, stop=stop) if isinstance(e, dict)]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == text[:first]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_n_of_one_is_accepted_and_more_is_refused_naming_the_limit(client: httpx.Client) -> None:
    assert _ask(client, n=1)["choices"][0]["index"] == 0
    refused = client.post("/v1/chat/completions", json=chat_body(n=3), headers=AUTH)
    assert refused.status_code == 422
    assert "n is 3" in refused.json()["error"]["message"]
    assert "at most 1" in refused.json()["error"]["message"]


def test_text_before_the_image_reaches_the_model_in_that_order(client: httpx.Client) -> None:
    """mineru-vl-utils' ``text_before_image=True`` sends the text first: the prompt keeps that order
    (Qwen2-VL's chat template renders the parts as given), the image's tokens after the text's."""
    engine = client.app.state.service.task("vlm").task.engine  # type: ignore[attr-defined]
    seen: list[list[str]] = []
    original = engine.model.chat_prompt

    def recording(content: list[Any], system: str | None = None) -> Any:
        seen.append(["text" if isinstance(part, str) else "image" for part in content])
        return original(content, system=system)

    image = {"type": "image_url", "image_url": {"url": data_url(text_crop())}}
    text = {"type": "text", "text": "\nText Recognition:"}
    engine.model.chat_prompt = recording
    try:
        first = _ask(client, messages=[{"role": "user", "content": [text, image]}])
        second = _ask(client, messages=[{"role": "user", "content": [image, text]}])
        around = _ask(client, messages=[{"role": "user", "content": [text, image, text]}])
    finally:
        engine.model.chat_prompt = original
    assert seen == [["text", "image", "text"], ["image", "text"], ["text", "image", "text"]]
    # The same tokens in another order: the same count.
    assert first["usage"]["prompt_tokens"] == second["usage"]["prompt_tokens"]
    assert around["usage"]["prompt_tokens"] > second["usage"]["prompt_tokens"]


def test_a_streamed_answer_arrives_token_by_token(client: httpx.Client) -> None:
    """The engine hands each decoded piece to the stream: several content chunks, together the
    non-streamed answer."""
    whole = _ask(client)["choices"][0]["message"]["content"]
    chunks = [e for e in _events(client) if isinstance(e, dict)]
    contents = [
        c["choices"][0]["delta"]["content"] for c in chunks if c["choices"][0]["delta"].get("content")
    ]
    assert len(contents) > 1
    assert "".join(contents) == whole


def test_a_stop_string_ends_decoding_early(client: httpx.Client) -> None:
    whole = _ask(client)
    text = whole["choices"][0]["message"]["content"]
    stop = text[2:4]
    stopped = _ask(client, stop=stop)
    assert stopped["choices"][0]["finish_reason"] == "stop"
    # usage counts the tokens actually generated: decoding ended at the one completing the stop.
    assert stopped["usage"]["completion_tokens"] < whole["usage"]["completion_tokens"]
    streamed = _events(client, stop=stop, stream_options={"include_usage": True})
    assert isinstance(streamed[-2], dict) and streamed[-2]["usage"] == stopped["usage"]
