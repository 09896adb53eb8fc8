"""scripts/bench.py memory keeps working: on one page, both parts, every variant. Only the report's
shape is checked, never a size or a timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from docfn_testkit.paths import ROOT


@pytest.mark.timeout(600)
def test_bench_memory_reports_every_stage_and_load_level(model_store: Path, tmp_path: Path) -> None:
    script = str(ROOT / "scripts" / "bench.py")
    subprocess.run(
        [sys.executable, script, "memory", "--pages", "1", "--rounds", "1", "--out", str(tmp_path)],
        check=True,
        cwd=ROOT,
        env={**os.environ, "DOCFN_MODEL_STORE": str(model_store)},
        capture_output=True,
    )
    report = json.loads((tmp_path / "memory.json").read_text())
    assert report["command"] == f"scripts/bench.py memory --pages 1 --rounds 1 --out {tmp_path}"
    assert report["pages"] == 1
    ocr = report["tasks"]["ocr"]
    assert set(ocr["stages"]) == set(ocr["load"]) == {"glibc_default", "glibc_thresholds", "as_shipped"}
    for row in ocr["stages"].values():
        stages = row["stages"]
        assert list(stages) == ["import", "loaded", "first_page", "all_pages"]
        assert 0 < stages["import"]["rss"] < stages["loaded"]["rss"] <= row["hwm_mb"]
        assert row["rollup"]["anonymous"] > 0 and row["rollup"]["file"] > 0
    for row in ocr["load"].values():
        assert [row[f"clients_{n}"]["hwm"] > 0 for n in (1, 2, 4, 8)] == [True] * 4
        assert row["peak_mb"] >= row["ready"]["hwm"]
    assert "under load" in (tmp_path / "memory.md").read_text()
