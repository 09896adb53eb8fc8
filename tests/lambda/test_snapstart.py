"""SnapStart's runtime hooks (docfn.adapters.aws_lambda.snapshot) run for real inside the function:
init with the pack fetched from moto S3 and warmed, the before-snapshot hook, then restores
simulated by forking (docfn_testkit.snapstart), each answering a real request and an S3 job against
real redis-server and moto S3, sharing no connection and no random state with the snapshot or each
other. And the restore protocol as the image runs it: the real awslambdaric with
AWS_LAMBDA_INITIALIZATION_TYPE=snap-start against the Runtime API emulator's restore/next."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from docfn.tooling.publish import publish_pack
from docfn_testkit.events import BUCKET, function_url_event
from docfn_testkit.lambda_local import LambdaFunction, lambda_environment
from docfn_testkit.paths import OCR_PACK, OCR_PACK_VERSION, SAMPLE_PAGE
from docfn_testkit.servers import RedisServer, S3Server


@pytest.fixture(scope="module")
def published_ocr_pack(aws_services: tuple[S3Server, RedisServer], model_store: Path) -> str:
    """The OCR pack on moto S3, where init fetches it from (DOCFN_MODEL_URI)."""
    s3, _ = aws_services
    return publish_pack(model_store / OCR_PACK / OCR_PACK_VERSION, BUCKET, endpoint_url=s3.endpoint_url).uri


def test_restores_answer_and_share_no_connection_or_random_state(
    aws_services: tuple[S3Server, RedisServer], published_ocr_pack: str, tmp_path: Path
) -> None:
    s3, redis = aws_services
    env = lambda_environment(s3, redis, tmp_path / "store", model_uri=published_ocr_pack, eager_load="1")
    keys = []
    for _ in range(2):
        key = f"uploads/ocr/{uuid.uuid4().hex}/page.png"
        s3.client().put_object(Bucket=BUCKET, Key=key, Body=SAMPLE_PAGE.read_bytes(), ContentType="image/png")
        keys.append(key)
    out = tmp_path / "snapstart.json"
    done = subprocess.run(
        [sys.executable, "-m", "docfn_testkit.snapstart", str(out), *keys],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    snapshot, restores, same_pid = report["snapshot"], report["restores"], report["same_pid"]

    # The snapshot holds loaded packs and no open socket.
    assert snapshot["ready"] is True
    assert snapshot["sockets_after_before_snapshot"] == 0

    assert len(restores) == 2 and not [r for r in restores if "error" in r], restores
    for restore in restores:
        assert restore["sockets_after_restore"] == 0
        assert restore["http"]["status"] == 200 and "RaggedRight" in restore["http"]["text"]
        assert restore["http"]["lambda_cold"] == "1"  # each restored container's first invocation
        assert restore["job_states"] == ["succeeded"]
    for key in keys:
        job_id = key.split("/")[2]
        raw = s3.client().get_object(Bucket=BUCKET, Key=f"results/{job_id}/result.json")["Body"].read()
        assert "RaggedRight" in json.loads(raw)["result"]["text"]

    # No shared connection: each restore's Redis connection is its own, not the snapshot's.
    ids = [
        snapshot["redis_client_id"],
        *(r["redis_client_id"] for r in restores),
        same_pid["redis_client_id"],
    ]
    assert len(set(ids)) == len(ids), ids
    # No shared random state: the two restores draw different numbers (numpy's global generator
    # does not reseed itself on fork: only the hook does), and uuid4 reads os.urandom.
    first, second = restores
    assert first["numpy"] != second["numpy"]
    assert first["random"] != second["random"]
    assert first["uuid4"] != second["uuid4"]
    # In the snapshot's own pid (as on Lambda) the hook alone renews connection and seeds.
    assert same_pid["sockets_after_restore"] == 0
    assert same_pid["random_state_renewed"] and same_pid["numpy_state_renewed"]


def test_hooks_are_registered_with_the_runtime_client() -> None:
    """awslambdaric runs what snapshot_restore_py holds when AWS_LAMBDA_INITIALIZATION_TYPE=snap-start."""
    code = (
        "import snapshot_restore_py as s;"
        "from docfn.adapters.aws_lambda import handler;"
        "names = lambda hooks: [f.__name__ for f, _, _ in hooks];"
        "print(names(s.get_before_snapshot()), names(s.get_after_restore()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["['before_snapshot']", "['after_restore']"]


def test_the_runtime_client_runs_the_hooks_around_restore_next(
    aws_services: tuple[S3Server, RedisServer], published_ocr_pack: str, tmp_path: Path
) -> None:
    s3, redis = aws_services
    store = tmp_path / "store"
    env = lambda_environment(s3, redis, store, model_uri=published_ocr_pack, eager_load="1")
    env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
    function = LambdaFunction(env, tmp_path)
    function.api.restore_release.clear()  # hold the function "in the snapshot" until we look
    function.start()
    try:
        assert function.api.restore_requested.wait(180), function.log()
        # The snapshot point: the before-snapshot hook has run, and the pack was fetched (from
        # moto S3) and warmed before it, so it is in the snapshot.
        hooks = [r["hook"] for r in function.log_records() if r.get("message") == "snapstart"]
        assert hooks == ["before_snapshot"], function.log()
        (before,) = [r for r in function.log_records() if r.get("message") == "snapstart"]
        assert before["ready"] is True
        assert (store / OCR_PACK / OCR_PACK_VERSION / "manifest.json").exists()
        function.api.restore_release.set()

        event = function_url_event(
            "POST", "/v1/ocr", SAMPLE_PAGE.read_bytes(), content_type="image/png", base64_body=True
        )
        invocation = function.invoke(event)
        assert invocation.outcome == "response", invocation.payload.decode()
        response = invocation.json()
        assert (
            response["statusCode"] == 200 and "RaggedRight" in json.loads(response["body"])["result"]["text"]
        )
        hooks = [r["hook"] for r in function.log_records() if r.get("message") == "snapstart"]
        assert hooks == ["before_snapshot", "after_restore"]
        assert function.api.init_errors == [] and function.api.restore_errors == []
    finally:
        function.stop()
