"""Fixtures of the fault suite: an S3 server that can be switched off and on."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import AWS_TEST_ENV, S3Server, wait_for_port

BUCKET = "docfn-test"


class SwitchableS3(S3Server):
    """moto's S3 server in its own process (``s3_switch.py``); ``down()``/``up()`` keep its data."""

    def start(self) -> SwitchableS3:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("s3_switch.py")), str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._expect("up")
        wait_for_port(self.port, process=self.process)
        return self

    def down(self) -> None:
        self._send("down")

    def up(self) -> None:
        self._send("up")
        wait_for_port(self.port, process=self.process)

    def _send(self, command: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        self._expect(command)

    def _expect(self, word: str) -> None:
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line == word, f"s3_switch said {line!r}, expected {word!r}"


@pytest.fixture
def switchable_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[SwitchableS3]:
    for key, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    server = SwitchableS3().start()
    server.client().create_bucket(Bucket=BUCKET)
    yield server
    server.stop()
