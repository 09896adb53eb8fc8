"""scripts/bench.py browser_ocr --quick: one devset page read in headless Chromium beside the server,
and the first visit's bytes, written as JSON and Markdown naming the command (shape only, never a
timing). In the bench group (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from docfn_testkit.paths import ROOT


def test_bench_browser_ocr_quick_writes_its_report(model_store: Path, tmp_path: Path) -> None:
    command = [str(ROOT / "scripts" / "bench.py"), "browser_ocr", "--quick", "--out", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env={**os.environ, "DOCFN_MODEL_STORE": str(model_store)},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "browser_ocr.json").read_text())
    assert report["command"] == f"scripts/bench.py browser_ocr --quick --out {tmp_path}"
    assert report["pages"] == 1 and report["rows"][0]["server_lines"] > 0
    row = report["rows"][0]  # the page at / isolated (threads) beside the same page without headers
    assert row["cross_origin_isolated"] is True and row["threads"] > 1 and row["one_thread_threads"] == 1
    assert set(report["parity"]) == {"browser_cer", "server_cer", "lines_iou_0_9_share"}
    visit = report["first_visit"]
    assert {"/try/ocr-pack/rec.onnx", "/try/ocr/ort-wasm-simd-threaded.wasm"} <= set(visit["files"])
    assert 0 < visit["gzip_bytes"] < visit["bytes"] and visit["budget_bytes"] == 20_000_000
    markdown = (tmp_path / "browser_ocr.md").read_text()
    assert "## First visit" in markdown and "browser/server" in markdown
