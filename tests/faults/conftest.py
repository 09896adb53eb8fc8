"""Fixtures of the fault suite: an S3 server that can be switched off and on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from docfn_testkit.servers import AWS_TEST_ENV, TEST_BUCKET, SwitchableS3


@pytest.fixture
def switchable_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[SwitchableS3]:
    for key, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    server = SwitchableS3().start()
    server.client().create_bucket(Bucket=TEST_BUCKET)
    yield server
    server.stop()
