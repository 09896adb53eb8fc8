"""schemathesis against the app's own OpenAPI schema (``/openapi.json``) on real ``docfn serve``
processes with a bucket: every documented operation fuzzed, a bounded number of examples, zero 5xx.

Two apps between them serve every route: every task but ``vlm`` in one process (the block tasks and
parse with the tiny VLM pack, so formula and chart answer instead of 503 "no pack"), with MinerU's
routes (``/file_parse``, ``/v1/file_parse``, the task API), uploads and jobs; and ``vlm`` with the
OpenAI routes (``/v1/models``, ``/v1/chat/completions``). They cannot be one process: ``vlm`` reads
its pack from ``DOCFN_MODEL_URI``, as ocr and layout do theirs (one function per task)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docfn.core.settings import ALL_TASKS
from docfn_testkit.load import figure
from docfn_testkit.servers import DocfnServer, S3Server

ST = str(Path(sys.executable).parent / "st")
MAX_EXAMPLES = 8  # per operation: the run stays bounded with every route in the schema
APPS = {
    "tasks": {"DOCFN_TASKS": ",".join(t for t in ALL_TASKS if t != "vlm")},
    "vlm": {"DOCFN_TASKS": "vlm"},
}


@pytest.mark.parametrize("app", sorted(APPS))
def test_no_operation_answers_a_server_error(
    app: str, s3_server: S3Server, model_store: Path, vlm_tiny_pack: Path, tmp_path: Path
) -> None:
    pack = (
        {"DOCFN_MODEL_URI": str(vlm_tiny_pack)}
        if app == "vlm"
        else {"DOCFN_VLM_MODEL_URI": str(vlm_tiny_pack)}
    )
    server = DocfnServer(
        {
            "DOCFN_MODEL_STORE": str(model_store),
            "DOCFN_BUCKET": "docfn-test",
            "DOCFN_S3_ENDPOINT_URL": s3_server.endpoint_url,
            "DOCFN_VLM_MAX_TOKENS": "6",  # the tiny pack's answers are noise: keep them short
            **APPS[app],
            **pack,
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
