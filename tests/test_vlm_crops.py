"""Many crops in one request to the VLM (``POST /v1/vlm`` with several file parts), in process on the
tiny random pack: the answers come back in order, each equal to the crop's own single request, the
crops share the engine's batches, and each crop is cached as a single crop is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from docfn.core import metrics
from docfn_testkit.chat import app_client
from docfn_testkit.multipart import crop_pngs, multipart

PROMPTS = ["\nText Recognition:", "\nFormula Recognition:", "\nTable Recognition:"]


@pytest.fixture(scope="module")
def client(vlm_tiny_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    # The engine's default window: the crops of one request reach its queue together.
    yield from app_client(
        model_uri=str(vlm_tiny_pack), model_store=tmp_path_factory.mktemp("store"), vlm_batch_window_ms=200
    )


def _batches() -> tuple[float, float]:
    samples = {s.name: s.value for s in metrics.VLM_BATCH_SIZE.collect()[0].samples}
    return samples["docfn_vlm_batch_size_count"], samples["docfn_vlm_batch_size_sum"]


def test_nine_crops_answer_in_order_in_shared_batches_as_each_alone(client: httpx.Client) -> None:
    crops = crop_pngs(9)
    prompts = [PROMPTS[n % 3] for n in range(9)]
    body, content_type = multipart(crops, [("prompt", p) for p in prompts])
    before = _batches()
    answer = client.post("/v1/vlm?max_tokens=6", content=body, headers={"content-type": content_type})
    assert answer.status_code == 200, answer.text
    batches, sequences = (a - b for a, b in zip(_batches(), before, strict=True))
    data = answer.json()
    assert data["crops"] == 9 and len(data["results"]) == 9 and data["cached"] is False
    assert answer.headers["x-request-id"] == data["request_id"]
    assert sequences == 9 and batches < 9, (batches, sequences)  # crops shared forward passes
    for crop, prompt, result in zip(crops, prompts, data["results"], strict=True):
        alone = client.post(
            "/v1/vlm",
            params={"max_tokens": 6, "prompt": prompt},
            content=crop,
            headers={"content-type": "image/png"},
        )
        assert alone.status_code == 200, alone.text
        # fp32 pack: batched answers equal answers alone exactly; and the crop's own request is a
        # cache hit of the many-crop request's entry (same crop bytes, same options).
        assert alone.json()["cached"] is True
        assert alone.json()["result"] == result["result"]
        assert result["result"]["pages"][0]["completion_tokens"] <= 6
    again = client.post("/v1/vlm?max_tokens=6", content=body, headers={"content-type": content_type})
    assert again.json()["cached"] is True and again.json()["results"] == [
        {**r, "cached": True, "cold": False, "timings_ms": again.json()["results"][n]["timings_ms"]}
        for n, r in enumerate(data["results"])
    ]


def test_one_prompt_for_every_crop_and_the_single_file_form(client: httpx.Client) -> None:
    crops = crop_pngs(3)
    body, content_type = multipart(crops, [("prompt", PROMPTS[1])])
    shared = client.post("/v1/vlm?max_tokens=3", content=body, headers={"content-type": content_type})
    assert shared.status_code == 200, shared.text
    body, content_type = multipart(crops[:1], [("prompt", PROMPTS[1])], name="image")
    single = client.post("/v1/vlm?max_tokens=3", content=body, headers={"content-type": content_type})
    assert single.status_code == 200, single.text
    assert "results" not in single.json()  # one file part: the ordinary single-input answer
    assert single.json()["result"] == shared.json()["results"][0]["result"]


def test_prompts_that_do_not_match_the_crops_and_a_bad_crop_are_refused(client: httpx.Client) -> None:
    crops = crop_pngs(3)
    body, content_type = multipart(crops, [("prompt", PROMPTS[0]), ("prompt", PROMPTS[1])])
    answer = client.post("/v1/vlm", content=body, headers={"content-type": content_type})
    assert answer.status_code == 422 and "one per crop" in answer.json()["error"]["message"]
    body, content_type = multipart([crops[0], b"not an image", crops[2]])
    answer = client.post("/v1/vlm?max_tokens=2", content=body, headers={"content-type": content_type})
    assert answer.status_code in (400, 415), answer.text
    assert answer.json()["error"]["message"].startswith("crop 1 (crop1.png):")


def test_docfn_client_sends_a_page_of_crops_in_one_request(client: httpx.Client) -> None:
    from docfn.client import Client

    caller = Client("http://testserver")
    caller.http = client  # the in-process app (Starlette's TestClient is an httpx.Client)
    crops = crop_pngs(4)
    answers = caller.run_crops("vlm", crops, prompts=PROMPTS[0], options={"max_tokens": 3})
    assert [a.task for a in answers] == ["vlm"] * 4 and len({a.request_id for a in answers}) == 1
    for crop, answer in zip(crops, answers, strict=True):
        alone = client.post(
            "/v1/vlm",
            params={"max_tokens": 3, "prompt": PROMPTS[0]},
            content=crop,
            headers={"content-type": "image/png"},
        )
        assert alone.json()["result"] == answer.result
    (single,) = caller.run_crops("vlm", crops[:1], prompts=[PROMPTS[0]], options={"max_tokens": 3})
    assert single.result == answers[0].result
