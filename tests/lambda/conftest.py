"""A docfn Lambda function, run the way the image runs it, against real local services.

``python -m awslambdaric docfn.adapters.aws_lambda.handler.handler`` (the image's ENTRYPOINT + CMD) polls the
Runtime API emulator; S3 is moto's standalone server over HTTP and the cache a real redis-server.
One function process serves a whole test module (so tests see cold, then warm invocations).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from ..conftest import SHARED, RedisServer, S3Server, free_port
from .runtime_api import Invocation, RuntimeApiEmulator

EVENTS = SHARED / "events"
BUCKET = "docfn-test"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def load_event(name: str) -> dict[str, Any]:
    """A sample event from ../shared/events (never hand-written), as a fresh copy to edit."""
    return copy.deepcopy(json.loads((EVENTS / name).read_text()))


def function_url_event(
    method: str,
    path: str,
    body: bytes | str | None = None,
    *,
    content_type: str | None = None,
    base64_body: bool = False,
    query: str = "",
) -> dict[str, Any]:
    event = load_event("lambda-function-url.json")
    event["rawPath"] = path
    event["rawQueryString"] = query
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    headers = event["headers"]
    headers.pop("accept-encoding", None)  # keep responses uncompressed and comparable
    if content_type:
        headers["content-type"] = content_type
    if body is not None:
        raw = body.encode() if isinstance(body, str) else body
        headers["content-length"] = str(len(raw))
        event["body"] = base64.b64encode(raw).decode() if base64_body else raw.decode()
        event["isBase64Encoded"] = base64_body
    return event


def s3_event(key: str, size: int, bucket: str = BUCKET) -> dict[str, Any]:
    """A direct S3 ObjectCreated notification; S3 sends the key URL-encoded (quote_plus)."""
    event = load_event("s3-object-created.json")
    record = event["Records"][0]
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["s3"]["object"]["key"] = quote_plus(key)
    record["s3"]["object"]["size"] = size
    return event


def sqs_event(bodies: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """An SQS batch: (messageId, S3 notification) pairs, each notification JSON-encoded as the body."""
    event = load_event("s3-via-sqs.json")
    template = event["Records"][0]
    event["Records"] = []
    for message_id, notification in bodies:
        record = copy.deepcopy(template)
        record["messageId"] = message_id
        record["body"] = json.dumps(notification)
        event["Records"].append(record)
    return event


def sqs_notification(key: str, size: int) -> dict[str, Any]:
    """The notification inside the sample SQS message, retargeted at ``key``."""
    notification = json.loads(load_event("s3-via-sqs.json")["Records"][0]["body"])
    record = notification["Records"][0]
    record["s3"]["bucket"]["name"] = BUCKET
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{BUCKET}"
    record["s3"]["object"]["key"] = quote_plus(key)
    record["s3"]["object"]["size"] = size
    return notification


def eventbridge_event(key: str, size: int) -> dict[str, Any]:
    event = load_event("s3-eventbridge-object-created.json")
    event["resources"] = [f"arn:aws:s3:::{BUCKET}"]
    event["detail"]["bucket"]["name"] = BUCKET
    # S3 URL-encodes keys for EventBridge as for its notifications ("+" for spaces); Powertools'
    # S3EventBridgeNotificationObject.key decodes them the same way, and so does docfn.
    event["detail"]["object"]["key"] = quote_plus(key, safe="/")
    event["detail"]["object"]["size"] = size
    return event


class LambdaFunction:
    """The runtime client process plus the emulator it polls."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.api = RuntimeApiEmulator(free_port())
        self.env = env
        self.workdir = workdir
        self.log_path = workdir / "function.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.invocations = 0

    def start(self) -> LambdaFunction:
        self.api.start()
        env = {**self.env, "AWS_LAMBDA_RUNTIME_API": self.api.address}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "awslambdaric", "docfn.adapters.aws_lambda.handler.handler"],
                env=env,
                cwd=self.workdir,  # not the repository: the handler must resolve from the installed package
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def invoke(self, event: Any, timeout: float = 120.0) -> Invocation:
        assert self.process is not None
        invocation = self.api.enqueue(event)
        self.invocations += 1
        deadline = timeout
        while not invocation.done.wait(0.25):
            deadline -= 0.25
            if self.process.poll() is not None:
                raise AssertionError(f"the runtime exited ({self.process.returncode}):\n{self.log()}")
            if deadline <= 0:
                raise AssertionError(f"no result within {timeout}s:\n{self.log()}")
        return invocation

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.api.stop()


def lambda_environment(s3: S3Server, redis: RedisServer, store: Path, **docfn: str) -> dict[str, str]:
    """The environment Lambda gives an ``ocr`` function, our local services, and ``docfn`` settings
    (``DOCFN_`` + name): nothing else of ours leaks in (no DOCFN_MAX_BODY_BYTES: the Lambda default
    must apply)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DOCFN_", "AWS_"))}
    return {
        **base,
        **AWS_ENV,
        "AWS_LAMBDA_FUNCTION_NAME": "docfn-ocr",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/docfn-ocr",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]test",
        "DOCFN_TASKS": "ocr",
        "DOCFN_MODEL_STORE": str(store),
        "DOCFN_BUCKET": BUCKET,
        "DOCFN_S3_ENDPOINT_URL": s3.endpoint_url,
        "DOCFN_REDIS_URL": redis.url,
        **{f"DOCFN_{name.upper()}": value for name, value in docfn.items()},
    }


@pytest.fixture(scope="module")
def aws_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[S3Server, RedisServer]]:
    """moto S3 (bucket docfn-test) and redis-server, shared by one module's tests."""
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed; scripts/test installs it (apt-get install redis-server)")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in AWS_ENV.items():
            patch.setenv(key, value)
        s3 = S3Server()
        s3.start()
        s3.client().create_bucket(Bucket=BUCKET)
        redis = RedisServer(binary, tmp_path_factory.mktemp("redis"))
        redis.start()
        try:
            yield s3, redis
        finally:
            redis.stop()
            s3.stop()


@pytest.fixture(scope="module")
def lambda_function(
    aws_services: tuple[S3Server, RedisServer], model_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LambdaFunction]:
    function = LambdaFunction(
        lambda_environment(*aws_services, model_store), tmp_path_factory.mktemp("lambda")
    ).start()
    yield function
    function.stop()
