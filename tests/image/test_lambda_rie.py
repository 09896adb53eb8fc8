"""The function image as Lambda runs it: its own ENTRYPOINT + CMD behind the real AWS Lambda Runtime
Interface Emulator (from the aws-sam-cli wheel), read-only root, writable /tmp only, as a uid that is
not the image's USER (Lambda ignores USER), the model pack fetched over HTTP from a moto S3 server
on the host's loopback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from docfn.packs.catalog import DEFAULT_PACKS
from docfn_testkit import events
from docfn_testkit.containers import (
    LAMBDA_USER,
    REGION,
    ImageConfig,
    RieFunction,
    devset_page,
    rie_binary,
    server_timing,
    word_recall,
)
from docfn_testkit.servers import AWS_TEST_CREDENTIALS, S3Server

# The sample-event helpers the in-process Lambda tests use (tests/lambda: "lambda" is a keyword).

BUCKET = "docfn-rie"
# task -> (pack variables -> "NAME/VERSION", devset page, minimum word recall of its text)
CASES = {
    "ocr": ({"DOCFN_MODEL_URI": "ocr-ppocrv6-tiny/2"}, "003", 0.6),
    "parse": (
        {
            "DOCFN_MODEL_URI": "layout-cdla/2",
            "DOCFN_OCR_MODEL_URI": "ocr-ppocrv6-tiny/2",
            "DOCFN_TABLE_STRUCTURE_MODEL_URI": "table-slanet-plus/1",
        },
        "008",
        0.5,
    ),
}


@pytest.fixture(scope="module")
def rie() -> Path:
    return rie_binary()


def text_of(result: dict[str, Any]) -> str:
    """All strings in a result, whatever its shape (OCR text, Markdown, blocks)."""
    return json.dumps(result, ensure_ascii=False)


@pytest.mark.parametrize("task", sorted(CASES))
def test_function_url_cold_then_warm_under_the_real_rie(
    task: str,
    image_for: Callable[[str], ImageConfig],
    moto: S3Server,
    publish: Callable[[str, str], str],
    rie: Path,
) -> None:
    packs, page_id, min_recall = CASES[task]
    image = image_for(task)
    env = {
        **AWS_TEST_CREDENTIALS,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "DOCFN_S3_ENDPOINT_URL": moto.endpoint_url,
        **{variable: publish(BUCKET, ref) for variable, ref in packs.items()},
    }
    function = RieFunction(image, env, rie, user=LAMBDA_USER).start()
    try:
        page = devset_page(page_id)
        event = events.function_url_event(
            "POST", f"/v1/{task}", page, content_type="image/png", base64_body=True
        )
        first = function.invoke(event)
        assert first["statusCode"] == 200, f"{first.get('body')}\n{function.container.logs()}"
        body = json.loads(first["body"])
        headers = {k.lower(): v for k, v in first["headers"].items()}
        recall = word_recall(text_of(body["result"]), page_id)
        assert recall >= min_recall, f"{task} found {recall:.0%} of page {page_id}'s words"
        # The first request paid the model load: pack fetched from S3, verified, sessions created.
        assert body["cold"] is True and headers["x-docfn-lambda-cold"] == "1"
        timing = server_timing(headers["server-timing"])
        for phase in ("fetch", "verify", "session_create"):
            assert phase in timing and phase in body["timings_ms"], (phase, timing)

        again = function.invoke(event)
        assert again["statusCode"] == 200
        warm = json.loads(again["body"])
        assert warm["cold"] is False and again["headers"]["x-docfn-lambda-cold"] == "0"
        assert warm["result"] == body["result"]
        assert "fetch" not in warm["timings_ms"]
    finally:
        function.stop()


def test_health_and_unknown_route_under_the_real_rie(
    image_for: Callable[[str], ImageConfig], moto: S3Server, rie: Path
) -> None:
    """No pack configured and none needed: the function answers operational routes and 404s."""
    image = image_for("ocr")
    env = {**AWS_TEST_CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "DOCFN_S3_ENDPOINT_URL": moto.endpoint_url}
    function = RieFunction(image, env, rie).start()
    try:
        health = function.invoke(events.function_url_event("GET", "/healthz"))
        assert health["statusCode"] == 200 and json.loads(health["body"])["status"] == "ok"
        missing = function.invoke(events.function_url_event("GET", "/v1/nope"))
        assert missing["statusCode"] in (404, 405)
        assert "error" in json.loads(missing["body"])
    finally:
        function.stop()


def test_vlm_answers_a_page_of_crops_in_one_invocation_under_the_real_rie(
    image_for: Callable[[str], ImageConfig],
    moto: S3Server,
    publish: Callable[[str, str], str],
    rie: Path,
) -> None:
    """How a page's blocks reach the VLM on Lambda, one request per instance: one function URL event
    with a multipart body of 9 crops (docs/vlm.md, "Many crops in one request") answered as a list
    in order; the tiny stand-in pack under the default pack's name, exported with the default int8
    precisions, so each answer equals that crop's own request (a cache hit of its entry)."""
    from docfn_testkit.multipart import crop_pngs, multipart

    image = image_for("vlm")
    env = {
        **AWS_TEST_CREDENTIALS,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "DOCFN_S3_ENDPOINT_URL": moto.endpoint_url,
        "DOCFN_MODEL_URI": publish(BUCKET, f"{DEFAULT_PACKS['vlm']}/1"),
    }
    function = RieFunction(image, env, rie, user=LAMBDA_USER).start()
    try:
        crops = crop_pngs(9)
        body, content_type = multipart(crops, [("prompt", "\nFormula Recognition:")])
        event = events.function_url_event(
            "POST", "/v1/vlm", body, content_type=content_type, base64_body=True, query="max_tokens=4"
        )
        answer = function.invoke(event)
        assert answer["statusCode"] == 200, f"{answer.get('body')}\n{function.container.logs()}"
        data = json.loads(answer["body"])
        assert data["crops"] == 9 and data["cold"] is True and len(data["results"]) == 9
        for n in (0, 4, 8):
            alone = function.invoke(
                events.function_url_event(
                    "POST",
                    "/v1/vlm",
                    crops[n],
                    content_type="image/png",
                    base64_body=True,
                    query="max_tokens=4&prompt=%0AFormula+Recognition%3A",
                )
            )
            assert alone["statusCode"] == 200, alone.get("body")
            single = json.loads(alone["body"])
            assert single["cached"] is True and single["result"] == data["results"][n]["result"]
    finally:
        function.stop()
