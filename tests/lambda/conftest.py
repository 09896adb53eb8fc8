"""Fixtures of the Lambda tests: a docfn Lambda function, run the way the image runs it
(docfn_testkit.lambda_local), against real local services.

One function process serves a whole test module (so tests see cold, then warm invocations).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from docfn_testkit.events import BUCKET
from docfn_testkit.lambda_local import LAMBDA_AWS_ENV, LambdaFunction, lambda_environment
from docfn_testkit.servers import RedisServer, S3Server, redis_server_binary


@pytest.fixture(scope="module")
def aws_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[S3Server, RedisServer]]:
    """moto S3 (bucket docfn-test) and redis-server, shared by one module's tests."""
    try:
        binary = redis_server_binary()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    with pytest.MonkeyPatch.context() as patch:
        for key, value in LAMBDA_AWS_ENV.items():
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
