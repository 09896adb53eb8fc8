"""``docfn models quantize`` as a user meets it: it says what to install when ``onnx`` is missing,
needs a calibration folder, prints its progress on stderr, and picks int8 only with a clear margin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from docfn_testkit.paths import DEVSET, OCR_PACK, OCR_PACK_VERSION

DOCFN = str(Path(sys.executable).parent / "docfn")
TINY = Path(OCR_PACK) / OCR_PACK_VERSION


def _docfn(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DOCFN, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )


def test_missing_onnx_names_the_export_extra(model_store: Path, tmp_path: Path) -> None:
    # A plain install has no onnx: an importable stand-in that fails the way a missing package does.
    shadow = tmp_path / "no-onnx" / "onnx"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'onnx'\")\n")
    done = _docfn(
        "models",
        "quantize",
        str(model_store / TINY),
        "--calibration",
        str(DEVSET),
        env={"PYTHONPATH": str(shadow.parent)},
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "pip install -e .[export]" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_calibration_folder_is_required(model_store: Path) -> None:
    done = _docfn("models", "quantize", str(model_store / TINY), timeout=60)
    assert done.returncode == 2 and "--calibration" in done.stderr and "required" in done.stderr


def test_quantize_prints_progress_and_the_pack(model_store: Path, tmp_path: Path) -> None:
    calibration, evaluation = tmp_path / "cal", tmp_path / "eval"
    for directory, page_id in ((calibration, "003"), (evaluation, "008")):
        directory.mkdir()
        for suffix in (".png", ".txt"):
            (directory / f"{page_id}{suffix}").symlink_to(DEVSET / f"{page_id}{suffix}")
    done = _docfn(
        "models",
        "quantize",
        str(model_store / TINY),
        "--store",
        str(tmp_path / "store"),
        "--calibration",
        str(calibration),
        "--eval",
        str(evaluation),
        "--calibration-pages",
        "1",
        "--repeats",
        "2",
    )
    assert done.returncode == 0, done.stderr
    progress = [line for line in done.stderr.splitlines() if line.startswith("docfn: quantize: ")]
    steps = " | ".join(progress)
    for step in ("calibrating on 1 page(s): 003", "quantizing det: static-qdq", "held-out page(s): 008"):
        assert step in steps
    assert "timing round 1/2 done" in steps and "timing round 2/2 done" in steps
    assert any(line.startswith("docfn: quantize: det: ") for line in progress)
    assert "re-measuring the pack" in steps
    report = json.loads(done.stdout)
    assert Path(report["pack"]).is_dir() and "008" in report["eval_set"]


@pytest.mark.parametrize(
    ("speed_vs_fp32", "chosen"),
    [(0.99, "fp32"), (0.975, "fp32"), (0.95, "dynamic-matmul"), (1.02, "fp32")],
)
def test_int8_is_chosen_only_with_a_clear_speed_margin(speed_vs_fp32: float, chosen: str) -> None:
    from docfn.tooling.evaluate import Measurement
    from docfn.tooling.quantize import MIN_SPEEDUP, choose_candidate

    assert MIN_SPEEDUP == 0.03
    baseline = Measurement(cer=0.04, s_per_page=1.0)
    candidates = {
        "dynamic-matmul": Measurement(cer=0.0402, s_per_page=speed_vs_fp32),
        "static-qdq": Measurement(cer=0.06, s_per_page=0.5),  # fast, but past the CER margin
    }
    method, report = choose_candidate("rec", candidates, baseline, margin_pp=0.5)
    assert method == chosen and report["chosen"] == chosen
    if chosen == "fp32":
        assert "not 3% faster than fp32" in report["reason"]
