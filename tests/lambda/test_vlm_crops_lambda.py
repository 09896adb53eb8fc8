"""A page's crops in one function URL invocation of the ``vlm`` function, through the real Lambda
runtime client (docfn_testkit.lambda_local): on Lambda an instance serves one request at a time, so
this is how a page's blocks share the VLM's batches there (docs/vlm.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from docfn_testkit.events import function_url_event
from docfn_testkit.lambda_local import LambdaFunction, lambda_environment
from docfn_testkit.multipart import crop_pngs, multipart
from docfn_testkit.servers import RedisServer, S3Server


@pytest.fixture(scope="module")
def vlm_function(
    aws_services: tuple[S3Server, RedisServer],
    vlm_tiny_pack: Path,
    model_store: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LambdaFunction]:
    env = lambda_environment(*aws_services, model_store, tasks="vlm", model_uri=str(vlm_tiny_pack))
    env["AWS_LAMBDA_FUNCTION_NAME"] = "docfn-vlm"
    function = LambdaFunction(env, tmp_path_factory.mktemp("lambda-vlm")).start()
    yield function
    function.stop()


def test_ten_crops_in_one_invocation_answer_in_order(vlm_function: LambdaFunction) -> None:
    crops = crop_pngs(10)
    prompts = ["\nFormula Recognition:", "\nText Recognition:"] * 5
    body, content_type = multipart(crops, [("prompt", p) for p in prompts])
    event = function_url_event(
        "POST", "/v1/vlm", body, content_type=content_type, base64_body=True, query="max_tokens=5"
    )
    invocation = vlm_function.invoke(event)
    assert invocation.outcome == "response", invocation.payload.decode()
    response = invocation.json()
    assert response["statusCode"] == 200, response["body"]
    data = json.loads(response["body"])
    assert data["crops"] == 10 and data["request_id"] == invocation.request_id
    # The crops shared the engine's batches (Lambda's 50 ms window gathers one request's crops).
    metrics = vlm_function.invoke(function_url_event("GET", "/metrics")).json()["body"]
    sizes = {
        line.split()[0]: float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("docfn_vlm_batch_size_")
    }
    assert sizes["docfn_vlm_batch_size_sum"] == 10 and sizes["docfn_vlm_batch_size_count"] < 10, sizes
    for n in (0, 3, 9):  # each crop's own request: the shared Redis cache's entry, the same answer
        alone = function_url_event(
            "POST",
            "/v1/vlm",
            crops[n],
            content_type="image/png",
            base64_body=True,
            query=f"max_tokens=5&prompt={prompts[n].replace(chr(10), '%0A').replace(' ', '+')}",
        )
        single = json.loads(vlm_function.invoke(alone).json()["body"])
        assert single["cached"] is True and single["result"] == data["results"][n]["result"]
    records = vlm_function.log_records()
    request = next(
        r for r in records if r.get("message") == "request" and r.get("request_id") == invocation.request_id
    )
    assert request["status"] == 200
