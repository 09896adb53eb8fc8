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

``--decode``: the continuous-batching engine's decode rate at 1, 4, 8 and 16 concurrent crops
(``--concurrency``), in one run. Each round submits N requests at once (they join the running batch
together, one prefill), every one decoding exactly ``--tokens`` tokens (no stop token); each token's
time is recorded as the engine chooses it. Prefill: from the submit to the first tokens (vision pass
and prompt pass of all N), reported as seconds and prompt tokens/s. Decode: the tokens chosen after
the first ones, over the wall time from the first tokens to the last, aggregate over the N requests
(tokens/s), and the decoder step's time at each batch size. Concurrencies alternate within a round;
the median round counts. ``--real-cache DIR``: the graphs ``scripts/bench.py vlm`` caches (MinerU2.5
at its real dimensions, random weights; the default pack's int8 decoder and int8 vision tower).
Writes vlm_batching_decode.{json,md} (another ``--concurrency``: its values joined to the
name, e.g. vlm_batching_decode_1_8); with ``--quick``, the tiny pack, 1 and 4 concurrent, 4 tokens.
"""

from __future__ import annotations

import argparse
import dataclasses
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
    parser.add_argument(
        "--decode",
        action="store_true",
        help="decode tokens/s (and prefill) of the engine at --concurrency concurrent crops, in one run",
    )
    parser.add_argument(
        "--concurrency",
        default=DEFAULT_CONCURRENCY,
        help="with --decode: concurrent crops per round, comma-separated (default 1,4,8,16)",
    )
    parser.add_argument(
        "--real-cache",
        type=Path,
        help="with --decode: the graph cache of `scripts/bench.py vlm` (MinerU2.5's real dimensions)",
    )
    parser.add_argument(
        "--before",
        action="store_true",
        help="with --real-cache: also the cached decoder as exported before its KV heads were shared",
    )


def run(args: argparse.Namespace) -> int:
    if args.decode:
        return run_decode(args)
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


# --- --decode: the engine's decode rate by concurrency -------------------------------------------


DEFAULT_CONCURRENCY = "1,4,8,16"
NOW = "export-vlm now"
BEFORE = "repeat_kv, as exported before"


def _real_models(cache: Path, scratch: Path, before: bool) -> tuple[dict[str, VlmModel], dict[str, Any]]:
    """MinerU2.5 at its real dimensions (random weights) from ``scripts/bench.py vlm``'s cache: the
    default pack's graphs (int8 decoder, int8 vision tower, fp32 embedding). The decoder as
    export-vlm now writes it: the cache's int8 graph with the KV heads shared (vlm_gqa, which
    export-vlm applies to the fp32 graph before the per-row int8 rewrite; the two touch different
    MatMuls, so the order does not matter); with ``before``, the cached graph as it was exported
    (each KV head repeated per query head) too, side by side."""
    import shutil

    from docfn.tooling.vlm_gqa import share_kv_heads

    config = json.loads((cache / "pack_config.json").read_text())
    files = {
        "vision": cache / "int8" / "vision.onnx",
        "embed": cache / "fp32" / "embed.onnx",
        "decoder": cache / "int8" / "decoder.onnx",
        "tokenizer": cache / "checkpoint" / "tokenizer.json",
    }
    shared = scratch / "decoder-shared-kv" / "decoder.onnx"
    shared.parent.mkdir(parents=True)
    shutil.copyfile(files["decoder"], shared)
    rewritten = share_kv_heads(shared, config["text"]["heads"], config["text"]["kv_heads"])
    threads = Settings().onnx_threads
    models = {NOW: VlmModel({**files, "decoder": shared}, config, threads)}
    if before and rewritten:
        models[BEFORE] = VlmModel(files, config, threads)
    info = {
        "model": "MinerU2.5 at its real dimensions, random weights (scripts/bench.py vlm's cache)",
        "text_model": config["text"],
        "precision": "int8 (int8 vision tower)",
        "kv_heads_shared_by_this_run": rewritten,
    }
    return models, info


def _decode_round(engine: VlmEngine, crops: list[Image.Image], clients: int, tokens: int) -> dict[str, float]:
    """``clients`` requests submitted at once, each decoding exactly ``tokens`` tokens: the prefill's
    and the decode's seconds and tokens, from the time each token was chosen."""
    times: list[list[float]] = [[] for _ in range(clients)]
    requests = []
    for n in range(clients):
        request = engine.request(crops[n % len(crops)], "\nText Recognition:", SamplingKnobs(), tokens, None)
        stamp = times[n].append
        requests.append(
            dataclasses.replace(
                request, stop_tokens=frozenset(), on_token=lambda _, stamp=stamp: stamp(time.perf_counter())
            )
        )
    start = time.perf_counter()
    answers = [future.result() for future in engine.submit(requests)]
    assert all(len(a.token_ids) == tokens for a in answers), [len(a.token_ids) for a in answers]
    first = max(t[0] for t in times)  # one prefill for all: every first token comes from it
    last = max(t[-1] for t in times)
    decoded = sum(len(t) - 1 for t in times)
    steps = tokens - 1
    return {
        "prefill_s": first - start,
        "prompt_tokens": float(sum(a.prompt_tokens for a in answers)),
        "decode_s": last - first,
        "decode_tokens": float(decoded),
        "step_ms": (last - first) / steps * 1000 if steps else 0.0,
    }


def run_decode(args: argparse.Namespace) -> int:
    concurrency = [int(c) for c in args.concurrency.split(",")]
    if args.quick:
        args.model, args.tokens, args.rounds, concurrency, args.real_cache = "tiny", 4, 1, [1, 4], None
    scratch = tempfile.TemporaryDirectory()
    if args.real_cache is not None:
        models, info = _real_models(args.real_cache.expanduser().resolve(), Path(scratch.name), args.before)
    else:
        pack = args.pack or _make_pack(args.model, Path(scratch.name) / "pack")
        manifest = verify_pack(pack)
        models = {NOW: VlmModel.from_pack(pack, manifest, Settings().onnx_threads)}
        info = {
            "model": f"{manifest.pack_id} (--model {args.model})",
            "text_model": manifest.config["text"],
            "precision": manifest.precision,
        }
    max_batch = max(concurrency)
    crops = [Image.open(DEVSET / f"{page}.png").crop(box) for page, box in BLOCKS]
    # The window only matters to a lone first request; each round's requests arrive in one submit.
    engines = {
        name: VlmEngine(model, window_seconds=0.0, max_batch=max_batch) for name, model in models.items()
    }
    for engine in engines.values():
        _decode_round(engine, crops, 1, min(4, args.tokens))  # warm the sessions
    load_before = harness.load_average()
    runs: dict[str, dict[int, list[dict[str, float]]]] = {
        name: {n: [] for n in concurrency} for name in engines
    }
    for round_number in range(args.rounds):
        for clients in concurrency:
            for name, engine in engines.items():
                runs[name][clients].append(_decode_round(engine, crops, clients, args.tokens))
                print(
                    f"round {round_number + 1}, {name}, {clients} concurrent: {runs[name][clients][-1]}",
                    flush=True,
                )
    load_after = harness.load_average()
    for engine in engines.values():
        engine.close()
    graphs: dict[str, Any] = {}
    for name, by_clients in runs.items():
        rows: dict[str, Any] = {}
        for clients, measured in by_clients.items():
            decode_s = statistics.median(m["decode_s"] for m in measured)
            prefill_s = statistics.median(m["prefill_s"] for m in measured)
            rows[str(clients)] = {
                "decode_tokens_per_s": round(measured[0]["decode_tokens"] / decode_s, 2),
                "decode_step_ms": round(statistics.median(m["step_ms"] for m in measured), 1),
                "prefill_s": round(prefill_s, 3),
                "prefill_prompt_tokens_per_s": round(measured[0]["prompt_tokens"] / prefill_s, 1),
                "prompt_tokens": int(measured[0]["prompt_tokens"]),
                "rounds": [{k: round(v, 4) for k, v in m.items()} for m in measured],
            }
        single = rows[str(concurrency[0])]["decode_tokens_per_s"] if concurrency[0] == 1 else None
        for row in rows.values():
            row["vs_single_stream"] = round(row["decode_tokens_per_s"] / single, 2) if single else None
        graphs[name] = rows
    target = graphs[NOW].get("8", {}).get("vs_single_stream")
    report = {
        "when": datetime.now().isoformat(timespec="seconds"),
        **info,
        "tokens_per_request": args.tokens,
        "rounds": args.rounds,
        "max_batch": max_batch,
        "machine": harness.machine(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "target": "decode tokens/s at 8 concurrent >= 3x single-stream",
        "target_met": None if target is None else target >= 3.0,
        "decoders": graphs,
    }
    lines = [
        "# VLM continuous batching: decode tokens/s by concurrent crops\n",
        f"{info['model']}; {info['precision']} language model, text model {info['text_model']}. Devset"
        f' block crops (4 shapes), "\\nText Recognition:", every request decodes exactly {args.tokens}'
        " tokens (stop tokens off); N requests submitted at once join the running batch in one"
        " prefill. Decode tokens/s: tokens chosen after the first, aggregate over the N requests, per"
        " second of wall time from the first tokens to the last; prefill: submit to first tokens"
        f" (vision and prompt passes of all N). Concurrencies (and decoders) alternate within each"
        f" round; median of {args.rounds} rounds. {report['machine']['cpus']} CPUs, load average"
        f" (1, 5, 15 min) {load_before} before, {load_after} after (a machine shared with other jobs:"
        " read the ratios).\n",
    ]
    for name, rows in graphs.items():
        lines += [
            f"\n## Decoder: {name}\n",
            "| concurrent crops | decode tokens/s | vs single stream | decoder step (ms) | prefill (s) |"
            " prefill prompt tokens/s |",
            "|---|---|---|---|---|---|",
        ]
        for clients, row in rows.items():
            lines.append(
                f"| {clients} | {row['decode_tokens_per_s']} | {row['vs_single_stream']}x |"
                f" {row['decode_step_ms']} | {row['prefill_s']} | {row['prefill_prompt_tokens_per_s']} |"
            )
    if target is not None:
        verdict = "met" if target >= 3.0 else "missed"
        lines.append(
            f"\nTarget (8 concurrent >= 3x single-stream decode tokens/s, {NOW}): {verdict}, {target}x."
        )
    # Another set of concurrencies than the default writes a report of its own.
    stem = "vlm_batching_decode"
    if args.concurrency != DEFAULT_CONCURRENCY:
        stem += "_" + "_".join(str(n) for n in concurrency)
    print(harness.write_report(args.out, stem, report, "\n".join(lines)))
    scratch.cleanup()
    return 0
