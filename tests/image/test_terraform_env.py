"""Each function image run with the environment infra/terraform gives its Lambda function.

The variables come from Terraform's own evaluation of lambda.tf's environment expression
(functions/docfn_testkit/terraform_env.py), never copied here, so the Terraform config and the application
code cannot drift apart unnoticed. Placeholders for what Terraform would create are filled with
what this test stands up: the bucket (moto), the cache auth secret (moto's Secrets Manager, holding
the token redis-server requires). Plus what Lambda itself sets (region, function name, memory size,
the X-Ray daemon address of active tracing). Overridden, and only these, because they must point at
this test's local services:
  - DOCFN_REDIS_URL: rediss://<ElastiCache endpoint>:<port>/0 becomes redis://127.0.0.1:<port>/0
    with the same path (the local redis-server speaks no TLS);
  - DOCFN_S3_ENDPOINT_URL (unset by Terraform: AWS S3) and AWS_ENDPOINT_URL_SECRETS_MANAGER (unset:
    the Secrets Manager VPC endpoint) point at moto;
  - AWS_XRAY_DAEMON_ADDRESS points at an unused local UDP port (Lambda's daemon is not here).
"""

from __future__ import annotations

import json
import re
import secrets
import socket
from collections.abc import Callable, Iterator

import pytest

from docfn_testkit import events
from docfn_testkit.containers import (
    ContainerFunction,
    ImageConfig,
    Redis,
    devset_page,
    lambda_environment,
    pack_ref,
    word_recall,
)
from docfn_testkit.servers import S3Server
from docfn_testkit.terraform_env import evaluate, substitute

BUCKET = "docfn-terraform-test"
PAGES = {"table": "007", "parse": "008", "layout": "008"}


def terraform() -> dict:
    return evaluate()


# Parametrised at collection; an evaluation failure is reported by the test below, not as a
# collection error of the whole directory.
try:
    TASKS = sorted(terraform()["environment"])
    EVALUATION_ERROR: Exception | None = None
except Exception as exc:
    TASKS, EVALUATION_ERROR = [], exc


@pytest.fixture(scope="module")
def cache_auth(moto: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Redis]]:
    """The auth token in a Secrets Manager secret (its ARN) and a redis-server that requires it."""
    token = secrets.token_urlsafe(24)
    arn = moto.client("secretsmanager").create_secret(Name="docfn-cache-auth", SecretString=token)["ARN"]
    server = Redis(tmp_path_factory.mktemp("redis"), password=token).start()
    yield arn, server
    server.stop()


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_terraform_deploys_tasks() -> None:
    if EVALUATION_ERROR is not None:
        raise EVALUATION_ERROR
    assert TASKS, "lambda.tf's environment evaluates to no function"
    for task, env in terraform()["environment"].items():
        assert env.get("DOCFN_TASKS") == task, f"{task}: DOCFN_TASKS={env.get('DOCFN_TASKS')}"


@pytest.mark.parametrize("task", TASKS)
def test_function_runs_with_the_terraform_environment(
    task: str,
    image_for: Callable[[str], ImageConfig],
    moto: S3Server,
    publish: Callable[[str, str], str],
    cache_auth: tuple[str, Redis],
) -> None:
    secret_arn, redis_server = cache_auth
    evaluated = terraform()
    placeholders = {
        "aws_s3_bucket.this.id": BUCKET,
        "aws_secretsmanager_secret.cache_auth.arn": secret_arn,
    }
    env: dict[str, str] = {}
    for name, value in evaluated["environment"][task].items():
        if name == "DOCFN_REDIS_URL":
            # (the placeholders' brackets are not a URL's host: split by hand)
            match = re.fullmatch(r"([a-z]+)://[^/]*(/.*)?", value)
            assert match and match.group(1) == "rediss", f"the cache is reached over TLS in AWS: {value}"
            env[name] = f"redis://127.0.0.1:{redis_server.port}{match.group(2) or ''}"
            continue
        env[name] = substitute(str(value), placeholders)
    for value in env.values():
        ref = pack_ref(value)
        if ref is not None:
            publish(*ref)
    moto.bucket(BUCKET)
    config = evaluated["tasks"][task]
    lambda_env = lambda_environment(
        evaluated["function_names"][task],
        memory_mb=int(config["memory_size"]),
        timeout_s=int(config["timeout"]),
    )
    env = {
        **lambda_env,
        # Active tracing (tracing_config mode = "Active"): Lambda runs the X-Ray daemon and says where.
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{_udp_port()}",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        **env,
        "DOCFN_S3_ENDPOINT_URL": moto.endpoint_url,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto.endpoint_url,
    }
    function = ContainerFunction(image_for(task), env).start()
    try:
        page_id = PAGES.get(task, "003")
        event = events.function_url_event(
            "POST", f"/v1/{task}", devset_page(page_id), content_type="image/png", base64_body=True
        )
        response = function.response(event)
        assert response["statusCode"] == 200, f"{response['body']}\n{function.container.logs()}"
        body = json.loads(response["body"])
        assert body["task"] == task and body["result"] and body["cold"] is True
        if task == "ocr":
            assert word_recall(body["result"]["text"], page_id) >= 0.6

        # The shared cache, authenticated with the token from the secret, answers the repeat.
        again = function.response(event)
        assert again["statusCode"] == 200 and json.loads(again["body"])["cached"] is True
        keys = redis_server.client().keys("*")
        assert any(body["input_sha256"].encode() in key for key in keys), keys
    finally:
        function.stop()
