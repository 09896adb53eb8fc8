"""Ordinary mistakes on the command line end with one line on stderr and status 2, never a
traceback. Each runs through the installed ``docfn`` console script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from docfn_testkit.paths import OCR_PACK, OCR_PACK_VERSION, SAMPLE_PAGE
from docfn_testkit.servers import S3Server

DOCFN = str(Path(sys.executable).parent / "docfn")
TINY = Path(OCR_PACK) / OCR_PACK_VERSION


def _refused(*args: str, env: dict[str, str] | None = None) -> str:
    """Run ``docfn ARGS``; assert status 2 and a single stderr line; return that line."""
    done = subprocess.run(
        [DOCFN, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("docfn: "), done.stderr
    return lines[0]


def test_run_option_without_a_value(model_store: Path) -> None:
    line = _refused("run", "ocr", str(SAMPLE_PAGE), "-o", "foo", env={"DOCFN_MODEL_STORE": str(model_store)})
    assert "-o expects KEY=VALUE" in line and "'foo'" in line


def test_serve_unknown_task() -> None:
    line = _refused("serve", "--tasks", "nosuch", "--port", "0")
    assert "DOCFN_TASKS" in line and "unknown task(s) ['nosuch']" in line


def test_build_unknown_pack(tmp_path: Path) -> None:
    line = _refused("models", "build", "nosuch", "--store", str(tmp_path))
    assert "unknown model pack(s) ['nosuch']" in line and "ocr-ppocrv6-tiny" in line


def test_verify_tampered_and_non_pack_directories(model_store: Path, tmp_path: Path) -> None:
    pack = tmp_path / "tampered"
    shutil.copytree(model_store / TINY, pack)
    model = next(path for path in pack.rglob("*.onnx"))
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")
    assert "does not match manifest" in _refused("models", "verify", str(pack))  # same size, one byte off
    assert "no model pack manifest" in _refused("models", "verify", str(tmp_path))


def test_quantize_missing_calibration_folder(model_store: Path, tmp_path: Path) -> None:
    line = _refused(
        "models", "quantize", str(model_store / TINY), "--store", str(tmp_path), "--calibration", "/missing"
    )
    assert line == "docfn: --calibration /missing: no such folder of page images"


def test_publish_to_a_missing_bucket(s3_server: S3Server, model_store: Path) -> None:
    line = _refused(
        "models",
        "publish",
        str(model_store / TINY),
        "--bucket",
        "no-such-bucket",
        "--endpoint-url",
        s3_server.endpoint_url,
    )
    assert "bucket 'no-such-bucket' does not exist" in line


@pytest.mark.parametrize("argv", [["run", "ocr"], ["models"]])
def test_argparse_usage_errors_keep_status_2(argv: list[str]) -> None:
    done = subprocess.run([DOCFN, *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "usage: docfn" in done.stderr and "Traceback" not in done.stderr
