"""schemathesis against the app's own OpenAPI schema (``/openapi.json``) on a real ``docfn serve``
process with a bucket: every documented operation fuzzed, a bounded number of examples, zero 5xx.

One app serves every route: every task (the tiny random VLM pack stands in for the default VLM pack,
under its name in the store, so ``vlm``, formula, chart and parse's VLM blocks answer instead of 503
"no pack"), MinerU's routes (``/file_parse``, ``/v1/file_parse``, the task API), the OpenAI routes
(``/v1/models``, ``/v1/chat/completions``), uploads and jobs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from docfn.core.settings import ALL_TASKS
from docfn.tasks.registry import default_pack_settings
from docfn_testkit.load import figure
from docfn_testkit.servers import DocfnServer, S3Server

ST = str(Path(sys.executable).parent / "st")
MAX_EXAMPLES = 8  # per operation: the run stays bounded with every route in the schema


def store_with_every_default_pack(model_store: Path, vlm_pack: Path, store: Path) -> Path:
    """The session's built packs (linked) and ``vlm_pack`` as the default VLM pack."""
    store.mkdir(parents=True)
    for pack in model_store.iterdir():
        if not pack.name.startswith("_"):
            (store / pack.name).symlink_to(pack)
    name, version = default_pack_settings("vlm")["DOCFN_MODEL_URI"].split("/")
    shutil.copytree(vlm_pack, store / name / version)
    return store


def test_no_operation_answers_a_server_error(
    s3_server: S3Server, model_store: Path, vlm_tiny_pack: Path, tmp_path: Path
) -> None:
    app = "every_route"
    store = store_with_every_default_pack(model_store, vlm_tiny_pack, tmp_path / "store")
    server = DocfnServer(
        {
            "DOCFN_MODEL_STORE": str(store),
            "DOCFN_TASKS": ",".join(ALL_TASKS),
            "DOCFN_BUCKET": "docfn-test",
            "DOCFN_S3_ENDPOINT_URL": s3_server.endpoint_url,
            "DOCFN_VLM_MAX_TOKENS": "6",  # the tiny pack's answers are noise: keep them short
        }
    ).start()
    started = time.monotonic()
    try:
        operations = len(
            [op for path in server.client().get("/openapi.json").json()["paths"].values() for op in path]
        )
        done = subprocess.run(
            [
                ST,
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--generation-deterministic",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,  # its reports and caches stay out of the repository
        )
    finally:
        _, log = server.stop()
    assert done.returncode == 0, done.stdout[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert generated is not None and generated.group(1) == generated.group(2), done.stdout[-2000:]
    statuses = [
        json.loads(line)["status"]
        for line in log.splitlines()
        if line.startswith('{"ts"') and '"status"' in line
    ]
    server_errors = [line for line in log.splitlines() if '"status": 5' in line]
    assert statuses and all(status < 500 for status in statuses), server_errors[:5]
    figure(f"schemathesis.{app}.operations", operations)
    figure(f"schemathesis.{app}.cases", f"{generated.group(1)} generated, {generated.group(2)} passed")
    figure(f"schemathesis.{app}.task_requests_logged", f"{len(statuses)}, none 5xx")
    figure(f"schemathesis.{app}.seconds", round(time.monotonic() - started, 1))
