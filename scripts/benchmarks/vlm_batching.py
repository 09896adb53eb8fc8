"""The VLM's batching queue: throughput with 1, 4 and 16 concurrent block requests, batched vs not.

Each client thread sends devset block crops ("\\nText Recognition:", a fixed number of new tokens:
the random model never stops on its own, so every request decodes exactly ``--tokens``) to one
``VlmEngine`` and sends the next as soon as its answer is back (closed loop). Batched: the default
window (``DOCFN_VLM_BATCH_WINDOW_MS``, 200 ms) and max batch 16; unbatched: an engine with a window
of 0 and batches of 1, i.e. one request's forward passes at a time. Both on the same loaded model,
alternated round by round; the median round counts.

Packs (random weights; no model hub here), made unless ``--pack`` is given: ``--model tiny``, the
``docfn models export-vlm --random-tiny`` pack (widths of 64: every pass is overhead), or
``--model mineru-text``, MinerU2.5's text model at its real dimensions (hidden 896, 24 layers, 14
heads, 2 KV heads, MLP 4864; int8) behind the tiny vision tower and vocabulary: decoding, where a
VLM request spends its time, costs what it costs MinerU2.5. Writes vlm_batching.{json,md}
(vlm_batching_mineru_text with ``--model mineru-text``); ``--quick``: the tiny pack, 4 tokens, 4
requests per round, one round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

from benchmarks import harness
from docfn.core.settings import Settings
from docfn.packs.manifest import verify_pack
from docfn.tasks.vlm.engine import VlmEngine
from docfn.tasks.vlm.model import VlmModel
from docfn.tasks.vlm.sampling import SamplingKnobs
from docfn_testkit.paths import DEVSET

# Block crops of different shapes (page, box): text lines, a paragraph, a column strip.
BLOCKS = [
    ("001", (80, 120, 700, 190)),
    ("002", (100, 300, 460, 620)),
    ("003", (60, 200, 200, 900)),
    ("004", (90, 400, 1100, 470)),
]
CONCURRENCY = (1, 4, 16)


def _round(engine: VlmEngine, crops: list[Image.Image], clients: int, per_client: int, tokens: int) -> float:
    """Seconds for ``clients`` threads to get ``per_client`` answers each."""

    def client(n: int) -> None:
        for k in range(per_client):
            crop = crops[(n + k) % len(crops)]
            answer = engine.generate(crop, "\nText Recognition:", SamplingKnobs(), tokens, None)
            assert len(answer.token_ids) <= tokens

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return time.perf_counter() - start


# MinerU2.5's text model (Qwen2, 0.5B): what decoding a block's answer costs.
MINERU_TEXT = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "initializer_range": 0.02,
}


def _make_pack(model: str, out: Path) -> Path:
    if model == "tiny":
        command = [sys.executable, "-m", "docfn", "models", "export-vlm", "--random-tiny", str(out)]
        subprocess.run(command, check=True, capture_output=True)
        return out
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    from docfn.tooling.export_vlm import ExportOptions, export_checkpoint
    from docfn.tooling.vlm_checkpoint import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(out.parent / "checkpoint")
    config = json.loads((checkpoint / "config.json").read_text())
    config["text_config"].update(MINERU_TEXT)
    config["text_config"].pop("layer_types", None)  # saved for 2 layers; derived again for 24
    config["text_config"]["rope_parameters"]["mrope_section"] = [8, 12, 12]  # head_dim 64, as MinerU2.5
    config["vision_config"]["hidden_size"] = MINERU_TEXT["hidden_size"]  # the merger's output width
    torch.manual_seed(0)
    Qwen2VLForConditionalGeneration(Qwen2VLConfig(**config)).eval().save_pretrained(checkpoint)
    options = ExportOptions(name="mineru-text-random", version="1", precision="int8", parity_tokens=4)
    return export_checkpoint(checkpoint, out, options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=["tiny", "mineru-text"], default="tiny")
    parser.add_argument("--pack", type=Path, help="a VLM pack (default: a fresh one of --model)")
    parser.add_argument("--tokens", type=int, default=24, help="new tokens per request")
    parser.add_argument("--requests", type=int, default=32, help="requests per round (split over clients)")
    parser.add_argument("--rounds", type=int, default=3)


def run(args: argparse.Namespace) -> int:
    if args.quick:
        args.model, args.tokens, args.requests, args.rounds = "tiny", 4, 4, 1
    scratch = tempfile.TemporaryDirectory()
    pack = args.pack
    if pack is None:
        pack = _make_pack(args.model, Path(scratch.name) / "pack")
    manifest = verify_pack(pack)
    model = VlmModel.from_pack(pack, manifest, Settings().onnx_threads)
    crops = [Image.open(DEVSET / f"{page}.png").crop(box) for page, box in BLOCKS]
    window = Settings().vlm_batch_window_ms / 1000
    engines = {
        "batched": VlmEngine(model, window_seconds=window, max_batch=16),
        "unbatched": VlmEngine(model, window_seconds=0.0, max_batch=1),
    }
    _round(engines["unbatched"], crops, 1, 2, args.tokens)  # warm the sessions
    load_before = harness.load_average()[0]
    rows: dict[str, Any] = {}
    for clients in CONCURRENCY:
        per_client = max(1, args.requests // clients)
        total = per_client * clients
        seconds: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(args.rounds):
            for name, engine in engines.items():
                seconds[name].append(_round(engine, crops, clients, per_client, args.tokens))
        row: dict[str, Any] = {"requests": total}
        for name, runs in seconds.items():
            median = statistics.median(runs)
            row[name] = {
                "seconds": round(median, 3),
                "requests_per_s": round(total / median, 2),
                "tokens_per_s": round(total * args.tokens / median, 1),
            }
        row["speed_up"] = round(row["batched"]["requests_per_s"] / row["unbatched"]["requests_per_s"], 2)
        rows[str(clients)] = row
        print(f"{clients} clients: {row}", flush=True)
    for engine in engines.values():
        engine.close()
    report = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "pack": manifest.pack_id,
        "text_model": manifest.config["text"],
        "precision": manifest.precision,
        "window_ms": window * 1000,
        "max_batch": 16,
        "tokens_per_request": args.tokens,
        "rounds": args.rounds,
        "machine": harness.machine(),
        "load_average_before": load_before,
        "load_average_after": harness.load_average()[0],
        "concurrency": rows,
    }
    stem = "vlm_batching" if args.model == "tiny" else f"vlm_batching_{args.model.replace('-', '_')}"
    lines = [
        "# VLM batching queue: concurrent block requests, batched vs unbatched\n",
        f"{manifest.pack_id} ({manifest.precision} language model, text model {manifest.config['text']};"
        " random weights of MinerU2.5's architecture), devset block crops,"
        f' "\\nText Recognition:", {args.tokens} new tokens per request,'
        f" closed-loop clients, median of {args.rounds} rounds (batched and unbatched alternated);"
        f" window {window * 1000:g} ms, max batch 16; {report['machine']['cpus']} CPUs, load average"
        f" {report['load_average_before']} before, {report['load_average_after']} after.\n",
        "| concurrent requests | requests | unbatched req/s | batched req/s | batched tokens/s | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for clients, row in rows.items():
        lines.append(
            f"| {clients} | {row['requests']} | {row['unbatched']['requests_per_s']} |"
            f" {row['batched']['requests_per_s']} | {row['batched']['tokens_per_s']} | {row['speed_up']}x |"
        )
    lines.append(
        "\nA lone request waits out the window before it runs (nothing arrives to share it), and a"
        " batch smaller than the maximum waits for its window too; requests that arrive together (a"
        " page's blocks from MinerU's client) share every decoder step. On Lambda (one request per"
        " instance) the default window is 0."
    )
    print(harness.write_report(args.out, stem, report, "\n".join(lines)))
    scratch.cleanup()
    return 0
