"""schemathesis against the app's own OpenAPI schema (``/openapi.json``) on a real ``docfn serve``
with a bucket: every documented operation fuzzed, a bounded number of examples, zero 5xx."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from docfn_testkit.load import figure
from docfn_testkit.servers import DocfnServer, S3Server

ST = str(Path(sys.executable).parent / "st")


def test_no_operation_answers_a_server_error(s3_server: S3Server, model_store: Path, tmp_path: Path) -> None:
    server = DocfnServer(
        {
            "DOCFN_MODEL_STORE": str(model_store),
            "DOCFN_TASKS": "ocr",
            "DOCFN_BUCKET": "docfn-test",
            "DOCFN_S3_ENDPOINT_URL": s3_server.endpoint_url,
        }
    ).start()
    try:
        done = subprocess.run(
            [
                ST,
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "30",
                "--generation-deterministic",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,  # its reports and caches stay out of the repository
        )
    finally:
        _, log = server.stop()
    assert done.returncode == 0, done.stdout[-4000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert generated is not None and generated.group(1) == generated.group(2), done.stdout[-2000:]
    statuses = [
        json.loads(line)["status"]
        for line in log.splitlines()
        if line.startswith('{"ts"') and '"status"' in line
    ]
    assert statuses and all(status < 500 for status in statuses)
    figure("schemathesis.cases", f"{generated.group(1)} generated, {generated.group(2)} passed")
    figure("schemathesis.task_requests_logged", f"{len(statuses)}, none 5xx")
