"""formula, chart and table's VLM mode end to end on real crops of devset pages, with a tiny random
VLM pack of MinerU2.5's architecture (its answers are noise, bounded by max tokens: these tests
prove the path, the shapes and the errors; tests/test_vlm_two_step.py proves the content). Without
a VLM pack each answers 503 saying how to make and publish one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from docfn.adapters.wiring import build_service
from docfn.core.errors import PackNotConfigured
from docfn.core.settings import Settings
from docfn_testkit.cli import run_docfn
from docfn_testkit.crops import crop_png
from docfn_testkit.servers import S3Server, running_server, wait_until

MAX_TOKENS = "8"
HOW_TO = ("docfn models export-vlm --checkpoint", "docfn models publish", "DOCFN_VLM_MODEL_URI")


@pytest.fixture(scope="module")
def server(model_store: Path, vlm_tiny_pack: Path):  # type: ignore[no-untyped-def]
    yield from running_server(
        model_store,
        "formula,chart,table",
        DOCFN_VLM_MODEL_URI=str(vlm_tiny_pack),
        DOCFN_VLM_MAX_TOKENS=MAX_TOKENS,
    )


def post(server, task: str, body: bytes, **options: str):  # type: ignore[no-untyped-def]
    with server.client() as client:
        return client.post(f"/v1/{task}", params=options, content=body, headers={"content-type": "image/png"})


def test_formula_over_http(server) -> None:  # type: ignore[no-untyped-def]
    response = post(server, "formula", crop_png("formula"))
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["model"] == "qwen2vl-tiny-random@1"
    assert isinstance(result["latex"], str) and isinstance(result["complete"], bool)
    assert result["pages"][0]["width"] == 155 and result["pages"][0]["height"] == 63
    # The token budget is the deployment's to cap: a request may lower it, never raise it.
    assert post(server, "formula", crop_png("formula"), max_tokens="2").status_code == 200
    refused = post(server, "formula", crop_png("formula"), max_tokens="9")
    assert refused.status_code == 422 and "DOCFN_VLM_MAX_TOKENS" in refused.json()["error"]["message"]


def test_chart_over_http(server) -> None:  # type: ignore[no-untyped-def]
    response = post(server, "chart", crop_png("figure"))
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert {"kind", "sub_kind", "caption", "content", "complete", "markdown", "pages"} <= set(result)
    assert result["pages"][0]["width"] == 600


def test_table_vlm_over_http(server) -> None:  # type: ignore[no-untyped-def]
    response = post(server, "table", crop_png("table"), recognizer="vlm")
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    # The VLM pack joins the result's model (and so its cache key) only when it is used.
    assert result["model"].endswith("+qwen2vl-tiny-random@1")
    classic = post(server, "table", crop_png("table"))
    assert classic.status_code == 200 and "qwen2vl" not in classic.json()["result"]["model"]


def test_formula_and_chart_on_the_cli(vlm_tiny_pack: Path, tmp_path: Path) -> None:
    (tmp_path / "formula.png").write_bytes(crop_png("formula"))
    (tmp_path / "figure.png").write_bytes(crop_png("figure"))
    env = {"PATH": "/usr/bin:/bin", "DOCFN_VLM_MODEL_URI": str(vlm_tiny_pack), "DOCFN_VLM_MAX_TOKENS": "8"}
    env["DOCFN_MODEL_STORE"] = str(tmp_path / "store")
    for task, name in (("formula", "formula.png"), ("chart", "figure.png")):
        command = [sys.executable, "-m", "docfn", "run", task, str(tmp_path / name), "-o", "max_tokens=4"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        body = json.loads(done.stdout)
        assert body["task"] == task and body["result"]["model"] == "qwen2vl-tiny-random@1"


def test_without_a_vlm_pack_the_functions_answer_503_saying_how_to_make_one(model_store: Path) -> None:
    for server in running_server(model_store, "formula,chart,table", DOCFN_BUILD_PACKS="0"):
        for task, crop, options in (
            ("formula", "formula", {}),
            ("chart", "figure", {}),
            ("table", "table", {"recognizer": "vlm"}),
        ):
            response = post(server, task, crop_png(crop), **options)
            assert response.status_code == 503, (task, response.text)
            error = response.json()["error"]
            assert error["code"] == "model_pack_not_configured"
            assert all(step in error["message"] for step in HOW_TO), error["message"]
        # table's other recognisers do not need the VLM, and the function stays ready.
        assert post(server, "table", crop_png("table")).status_code == 200
        with server.client() as client:
            assert client.get("/readyz").status_code == 200


def test_loading_ahead_without_a_vlm_pack_readiness_names_it_for_every_task(model_store: Path) -> None:
    # Knative loads at start-up and routes only to ready pods: a pod without its pack stays unready
    # (a new revision never takes traffic from the serving one), and its probe says, for every task
    # it hosts, which pack to make and how; one task's missing pack does not stop the others' load.
    for server in running_server(model_store, "formula,chart", DOCFN_BUILD_PACKS="0", DOCFN_EAGER_LOAD="1"):
        with server.client() as client:
            response = wait_until(
                lambda: (r := client.get("/readyz")).json().get("error") and r, "the failed eager load"
            )
            assert response.status_code == 503
            tasks = response.json()["tasks"]
            for task in ("formula", "chart"):
                assert tasks[task]["loaded"] is False
                assert all(step in tasks[task]["error"] for step in HOW_TO), tasks[task]


def test_cli_without_a_vlm_pack_says_how_to_make_one(tmp_path: Path) -> None:
    (tmp_path / "formula.png").write_bytes(crop_png("formula"))
    env = {"DOCFN_MODEL_STORE": str(tmp_path / "store")}
    done = run_docfn("run", "formula", tmp_path / "formula.png", env=env, clean=True)
    assert done.returncode != 0
    assert all(step in done.stderr for step in HOW_TO), done.stderr


def test_a_vlm_pack_named_but_not_published_says_how_to_make_one(s3_server: S3Server, tmp_path: Path) -> None:
    settings = Settings(
        tasks=["formula"],
        model_store=tmp_path,
        vlm_model_uri="s3://docfn-test/models/vlm-mineru25-int8/1",
        s3_endpoint_url=s3_server.endpoint_url,
    )
    with pytest.raises(PackNotConfigured) as caught:
        build_service(settings).run("formula", crop_png("formula"), "image/png")
    assert "docfn models export-vlm --checkpoint" in caught.value.message
    assert "docfn models publish DIR/vlm-mineru25-int8/1 --bucket docfn-test" in caught.value.message
