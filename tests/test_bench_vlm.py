"""scripts/bench.py vlm stays runnable: its ``--quick`` mode (the tiny architecture, 3 new tokens, one
repeat) runs the whole protocol (random checkpoint, export and quantisation, every engine in its own
process, the report)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from docfn_testkit.paths import ROOT

# Both vision towers (fp32, int8) and the int8 and int4 decoders, against transformers.
ENGINES = ("onnx-int8", "onnx-int8-vision-int8", "onnx-int4a8-vision-int8", "transformers-fp32")
# The page is encoded once per distinct vision tower (fp32 ONNX, int8 ONNX, torch).
PAGE_ENGINES = {"onnx-int8", "onnx-int8-vision-int8", "transformers-fp32"}


def test_bench_vlm_tiny_reports_every_engine(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "scripts" / "bench.py"), "vlm", "--quick"]
    command += ["--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--engines", ",".join(ENGINES)]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)

    results = json.loads((out / "vlm_tiny.json").read_text())
    assert results["command"].startswith("scripts/bench.py vlm --quick ")
    assert results["size"] == "tiny"
    assert tuple(results["engines"]) == ENGINES
    for name, engine in results["engines"].items():
        for key in ("encode_block_s", "formula_crop_s"):  # wall times
            assert engine[key] > 0, (name, key)
        assert (engine["encode_page_s"] is not None) == (name in PAGE_ENGINES), name
        # Derived from differences of wall times: a number, whatever the machine's noise.
        assert isinstance(engine["prefill_s"], float) and isinstance(engine["decode_tokens_per_s"], float)
        assert engine["peak_rss_mb"] > 0 and engine["pack_mb"] >= 0
        if name != "transformers-fp32":
            # The fp32 vision tower is exact; the int8 one stays close on the tiny model's features.
            assert engine["features_cosine"] > 0.99, name
            assert 0 <= engine["token_agreement"] <= 1
    assert results["engines"]["onnx-int8"]["features_cosine"] > 0.99999
    assert set(results["speedups"]) == set(ENGINES[:-1])
    report = (out / "vlm_tiny.md").read_text()
    assert "| formula crop: encode + 3 tokens (s) |" in report
    assert "transformers-fp32" in report
