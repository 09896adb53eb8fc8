"""A docfn Lambda function, run the way the image runs it, in a local process.

``python -m awslambdaric docfn.adapters.aws_lambda.handler.handler`` (the image's ENTRYPOINT + CMD)
polls the Runtime API emulator (runtime_api.py); S3 is moto's standalone server over HTTP and the
cache a real redis-server (servers.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .events import BUCKET
from .runtime_api import Invocation, RuntimeApiEmulator
from .servers import AWS_TEST_ENV, AWS_TEST_REGION, RedisServer, S3Server, free_port

# The test credentials and region, plus the AWS_REGION Lambda sets beside AWS_DEFAULT_REGION.
LAMBDA_AWS_ENV = {**AWS_TEST_ENV, "AWS_REGION": AWS_TEST_REGION}


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
        **LAMBDA_AWS_ENV,
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
