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


def test_bench_vlm_batching_decode_reports_decode_and_prefill_by_concurrency(tmp_path: Path) -> None:
    """``vlm_batching --decode --quick``: the engine's decode tokens/s and prefill at 1 and 4
    concurrent crops of the tiny pack, in one run, in the report's shape (never a timing)."""
    command = [sys.executable, str(ROOT / "scripts" / "bench.py"), "vlm_batching", "--decode", "--quick"]
    command += ["--out", str(tmp_path)]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)

    report = json.loads((tmp_path / "vlm_batching_decode.json").read_text())
    assert report["command"] == f"scripts/bench.py vlm_batching --decode --quick --out {tmp_path}"
    assert report["tokens_per_request"] == 4 and len(report["load_average_before"]) == 3
    (rows,) = report["decoders"].values()
    assert list(rows) == ["1", "4"]
    for clients, row in rows.items():
        assert row["decode_tokens_per_s"] > 0 and row["prefill_s"] > 0, clients
        # Every request decoded exactly its tokens: the first from the prefill, the rest decoding.
        assert [r["decode_tokens"] for r in row["rounds"]] == [int(clients) * 3], clients
    assert rows["1"]["vs_single_stream"] == 1.0
    markdown = (tmp_path / "vlm_batching_decode.md").read_text()
    assert "| concurrent crops | decode tokens/s |" in markdown
