"""The VLM's OpenAI-compatible routes (what MinerU's http-client backend calls), in process on the
tiny random pack, and the 503 a function without a VLM pack answers on every VLM route."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from docfn.adapters.http.app import create_app
from docfn.adapters.wiring import build_service
from docfn.core.settings import Settings
from docfn_testkit.chat import API_KEY, AUTH, app_client, chat_body, data_url, text_crop
from docfn_testkit.paths import SAMPLE_PAGE


@pytest.fixture(scope="module")
def client(vlm_tiny_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    store = tmp_path_factory.mktemp("store")
    yield from app_client(model_uri=str(vlm_tiny_pack), model_store=store, api_key=API_KEY)


def test_models_lists_the_one_pack_served(client: httpx.Client, vlm_tiny_pack: Path) -> None:
    answer = client.get("/v1/models", headers=AUTH)
    assert answer.status_code == 200, answer.text
    (model,) = answer.json()["data"]
    assert model["object"] == "model" and model["id"].endswith("@" + vlm_tiny_pack.name)


def test_a_chat_completion_in_mineru_shape(client: httpx.Client) -> None:
    model = client.get("/v1/models", headers=AUTH).json()["data"][0]["id"]
    answer = client.post("/v1/chat/completions", json=chat_body(model=model), headers=AUTH)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    (choice,) = data["choices"]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    usage = data["usage"]
    assert usage["completion_tokens"] <= 6 and usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert data["object"] == "chat.completion" and data["model"] == model


def test_a_text_only_turn_is_answered(client: httpx.Client) -> None:
    body = chat_body(messages=[{"role": "user", "content": "Do these tables continue each other?"}])
    answer = client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text


def test_the_api_key_is_required_when_set(client: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
        for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions")):
            answer = client.request(method, path, json=chat_body(), headers=headers)
            assert answer.status_code == 401, (path, headers)
            assert answer.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"temperature": 0.7, "top_k": 50}, 422, "greedily"),
        ({"max_tokens": 10**6, "max_completion_tokens": None}, 422, "limit"),
        ({"model": "gpt-4o"}, 404, "not served"),
        ({"n": 2}, 422, "n may be at most 1"),
        ({"stop": ["ok", ""]}, 422, "non-empty"),
        ({"logit_bias": {}}, 422, "logit_bias"),
    ],
)
def test_requests_the_vlm_cannot_honour_are_refused(
    client: httpx.Client, change: dict[str, Any], status: int, says: str
) -> None:
    body = chat_body()
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    answer = client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]["message"]


def test_malformed_messages_are_refused(client: httpx.Client) -> None:
    image = {"type": "image_url", "image_url": {"url": data_url(text_crop())}}
    text = {"type": "text", "text": "\nText Recognition:"}
    cases = [
        ([{"role": "user", "content": [image, image, text]}], 422, "one per request"),
        ([{"role": "assistant", "content": "hi"}], 422, "one user message"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}],
            400,
            "data URL",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
                }
            ],
            415,
            "",
        ),
    ]
    for messages, status, says in cases:
        answer = client.post("/v1/chat/completions", json=chat_body(messages=messages), headers=AUTH)
        assert answer.status_code == status, (messages, answer.text)
        assert says in answer.json()["error"]["message"]
    answer = client.post("/v1/chat/completions", content=b"{not json", headers=AUTH)
    assert answer.status_code == 400


def test_the_vlm_task_answers_a_page_with_its_prompt(client: httpx.Client) -> None:
    answer = client.post(
        "/v1/vlm?max_tokens=3&prompt=%0ALayout%20Detection:",
        content=SAMPLE_PAGE.read_bytes(),
        headers={"content-type": "image/png"},
    )
    assert answer.status_code == 200, answer.text
    (page,) = answer.json()["result"]["pages"]
    assert page["completion_tokens"] <= 3 and page["finish_reason"] in ("stop", "length")
    assert isinstance(page["text"], str) and page["prompt_tokens"] > 0


def test_without_a_vlm_pack_every_vlm_route_answers_503_saying_how_to_make_one(tmp_path: Path) -> None:
    """Not 404 (no other function serves these): the default pack is not in the store, and no recipe
    builds it, even where packs may be built."""
    for client in app_client(model_store=tmp_path):
        answers = [
            client.get("/v1/models"),
            client.post("/v1/chat/completions", json=chat_body()),
            client.post("/v1/vlm", content=SAMPLE_PAGE.read_bytes(), headers={"content-type": "image/png"}),
        ]
        for answer in answers:
            assert answer.status_code == 503, answer.text
            error = answer.json()["error"]
            assert error["code"] == "model_pack_not_configured"
            assert "docfn models export-vlm --checkpoint" in error["message"]
            assert "docfn models publish DIR/vlm-mineru25-int8/1" in error["message"]
            assert "DOCFN_MODEL_URI=s3://BUCKET/models/vlm-mineru25-int8/1" in error["message"]
        assert client.get("/readyz").status_code == 200  # in rotation: callers read the message
        assert json.loads(client.get("/readyz").text)["tasks"]["vlm"]["loaded"] is False


def test_an_int8_vlm_pack_publishes_on_its_parity_record(vlm_tiny_pack: Path, s3_server: Any) -> None:
    """The publish gate reads a VLM pack's own accuracy record (greedy parity against transformers),
    not an OCR CER: exact fp32 parity and a recorded quantised figure, or no upload."""
    import dataclasses

    from docfn.packs.manifest import verify_pack
    from docfn.tooling.publish import PublishRefused, check_accuracy, publish_pack

    manifest = verify_pack(vlm_tiny_pack)
    fp32 = manifest.accuracy["fp32_decoder"]
    assert manifest.accuracy["metric"] == "greedy_token_agreement_vs_transformers"
    int8 = dataclasses.replace(
        manifest, precision="int8", accuracy={**manifest.accuracy, "int8_decoder": dict(fp32, exact_cases=0)}
    )
    check_accuracy(int8)  # its agreement is stated, not gated: it depends on the weights
    wrong = dataclasses.replace(int8, accuracy={**int8.accuracy, "fp32_decoder": dict(fp32, exact_cases=0)})
    with pytest.raises(PublishRefused, match="the export is wrong"):
        check_accuracy(wrong)
    unmeasured = dataclasses.replace(int8, accuracy={"metric": manifest.accuracy["metric"]})
    with pytest.raises(PublishRefused, match="export it with `docfn models export-vlm`"):
        check_accuracy(unmeasured)
    published = publish_pack(vlm_tiny_pack, "docfn-test", endpoint_url=s3_server.endpoint_url)
    assert published.uri.startswith("s3://docfn-test/models/")


def _batches() -> tuple[float, float]:
    """This process's VLM batches so far, and the sequences they decoded."""
    from prometheus_client import REGISTRY

    count = REGISTRY.get_sample_value("docfn_vlm_batch_size_count") or 0.0
    return count, REGISTRY.get_sample_value("docfn_vlm_batch_size_sum") or 0.0


def _post_together(app: Any, requests: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    """The requests sent at once to the app (one event loop, as a server receives them)."""
    import asyncio

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docfn", timeout=120) as client:
            return list(await asyncio.gather(*(client.post(path, **kw) for path, kw in requests)))

    return asyncio.run(scenario())


def _loaded_app(vlm_tiny_pack: Path, store: Path, **settings: Any) -> Any:
    config = Settings(tasks=["vlm"], model_uri=str(vlm_tiny_pack), model_store=store, **settings)
    service = build_service(config)
    service.loaded("vlm")  # no request waits for the load: what is measured is admission
    return create_app(config, service)


def test_the_vlm_queue_holds_requests_up_to_its_bound_and_refuses_past_it(
    vlm_tiny_pack: Path, tmp_path: Path
) -> None:
    """DOCFN_VLM_MAX_QUEUE requests wait in the batching queue together (the page tasks' queue of
    one would have refused all but one); the ones past it get 429 with Retry-After at once."""
    app = _loaded_app(
        vlm_tiny_pack,
        tmp_path,
        vlm_batch_window_ms=1500,  # the admitted ones are surely still waiting when the rest arrive
        vlm_max_queue=3,
        max_concurrency=1,
        max_queue=0,
        retry_after_seconds=4,
    )
    answers = _post_together(app, [("/v1/chat/completions", {"json": chat_body()})] * 5)
    assert sorted(answer.status_code for answer in answers) == [200] * 3 + [429] * 2
    for refused in (answer for answer in answers if answer.status_code == 429):
        assert refused.headers["retry-after"] == "4"
        assert refused.json()["error"]["code"] == "overloaded"
        assert "DOCFN_VLM_MAX_QUEUE" in refused.json()["error"]["message"]


def test_vlm_page_requests_wait_in_the_batching_queue_and_share_a_batch(
    vlm_tiny_pack: Path, tmp_path: Path
) -> None:
    """POST /v1/vlm is admitted by the VLM's queue, not the page tasks' single slot: four pages sent
    together with DOCFN_MAX_CONCURRENCY=1 and DOCFN_MAX_QUEUE=0 are all answered, in one batch."""
    app = _loaded_app(
        vlm_tiny_pack, tmp_path, vlm_batch_window_ms=1500, max_concurrency=1, max_queue=0, vlm_max_queue=8
    )
    pages = []
    for seed in range(4):
        image = text_crop()
        image.putpixel((seed, 0), (seed, 0, 0))  # distinct inputs: no cache hits
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        pages.append(buffer.getvalue())
    batches, sequences = _batches()
    answers = _post_together(
        app,
        [
            ("/v1/vlm?max_tokens=2", {"content": page, "headers": {"content-type": "image/png"}})
            for page in pages
        ],
    )
    assert [answer.status_code for answer in answers] == [200] * 4, [a.text for a in answers]
    after_batches, after_sequences = _batches()
    assert (after_batches - batches, after_sequences - sequences) == (1, 4)
