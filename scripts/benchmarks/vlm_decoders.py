"""The VLM's language model at MinerU2.5's real size (random weights): docfn's decoder loop beside
onnxruntime-genai's, alternated in one process on a shared machine.

One process holds every candidate and runs them in turn, round after round, on the same 108-token
prompt (the formula crop's length; token ids, no image) and ``--threads`` intra-op threads without
spin-waiting; per candidate the fastest round's wall and CPU seconds for the prefill (1 token) and
for 49 more greedy tokens. CPU seconds are what the work costs whatever the neighbours do; wall
seconds are what a caller waits on this machine at the load average the report gives.

- ``docfn-int8``: the default pack's decoder (``export-vlm``: per-row int8 ``MatMulInteger``) in
  docfn's loop (``VlmModel.generate``: M-RoPE positions, KV cache as ONNX Runtime values);
- ``docfn-int4a8``: the int4 ``MatMulNBits`` decoder with int8 compute (``accuracy_level`` 4);
- ``docfn-int8-prefill-int4a8-steps``: docfn's loop with the int8 decoder for the prefill and the
  int4 one for the steps (the same inputs, outputs and cache layout: the cache passes over as is);
- ``genai-int4``, ``genai-int8``: onnxruntime-genai 0.18's builder (the text model as a Qwen2 LM,
  ``accuracy_level`` 4, last position's logits only) and its generator (``og.Generator``);
- ``genai-graph-int4``, ``genai-graph-int8``: the builder's graphs in a minimal ONNX Runtime loop
  (argmax, the KV cache as ONNX Runtime values): the graph without genai's generator.

The graphs come from ``scripts/bench.py vlm``'s cache (``--cache-dir``; ``vlm``'s preparation writes
the genai graphs when a ``genai-*`` engine is asked for, and this section runs it if they are
missing). Writes vlm_decoders.{json,md}; ``--quick``: 1 round of 5 tokens.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import harness

PROMPT_TOKENS = 108
CANDIDATES = (
    "docfn-int8",
    "docfn-int4a8",
    "docfn-int8-prefill-int4a8-steps",
    "genai-int4",
    "genai-int8",
    "genai-graph-int4",
    "genai-graph-int8",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "docfn-bench" / "vlm-real")


def _docfn(
    cache: Path, decoder: str, threads: int, steps: str | None = None
) -> Callable[[np.ndarray, int], list[int]]:
    from docfn.core.onnx_sessions import get_session
    from docfn.tasks.vlm.model import VlmModel

    config = json.loads((cache / "pack_config.json").read_text())
    files = {
        "vision": cache / "fp32" / "embed.onnx",  # unused here (no image): a small graph
        "embed": cache / "fp32" / "embed.onnx",
        "decoder": cache / decoder,
        "tokenizer": cache / "checkpoint" / "tokenizer.json",
    }
    model = VlmModel(files, config, threads=threads)
    if steps is not None:  # the prefill on ``decoder``, every step on ``steps``
        prefill_session, step_session = model._decoder, get_session(cache / steps, threads)
        prefill = model.prefill

        def prefill_then_steps(requests: Any) -> Any:
            model._decoder = prefill_session
            try:
                return prefill(requests)
            finally:
                model._decoder = step_session

        model.prefill = prefill_then_steps  # type: ignore[method-assign]
    return lambda prompt, n: model.generate(prompt, [], max_new_tokens=n, stop_tokens=frozenset()).token_ids


def set_genai_threads(folder: Path, threads: int) -> None:
    """The exported genai model's decoder on ``threads`` intra-op threads without spin-waiting, as
    docfn's own sessions (written into its genai_config.json, which og.Model reads)."""
    config = json.loads((folder / "genai_config.json").read_text())
    options = config["model"]["decoder"]["session_options"]
    options.update(intra_op_num_threads=threads, inter_op_num_threads=1, allow_spinning="0")
    (folder / "genai_config.json").write_text(json.dumps(config, indent=2))


def genai_greedy(model: Any, prompt: np.ndarray, new_tokens: int) -> list[int]:
    """onnxruntime-genai's generator on ``model``: ``prompt`` then exactly ``new_tokens`` greedy tokens."""
    import onnxruntime_genai as og

    params = og.GeneratorParams(model)
    length = len(prompt) + new_tokens
    params.set_search_options(max_length=length, min_length=length, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(prompt.tolist())
    tokens: list[int] = []
    while not generator.is_done():
        generator.generate_next_token()
        tokens.append(int(generator.get_next_tokens()[0]))
    return tokens


def _genai(folder: Path, threads: int) -> Callable[[np.ndarray, int], list[int]]:
    import onnxruntime_genai as og

    set_genai_threads(folder, threads)
    model = og.Model(str(folder))
    return lambda prompt, n: genai_greedy(model, prompt, n)


def _genai_graph(folder: Path, threads: int) -> Callable[[np.ndarray, int], list[int]]:
    import onnxruntime as ort

    from docfn.core.onnx_sessions import new_session, session_options

    session = new_session(folder / "model.onnx", session_options(threads))
    config = json.loads((folder / "genai_config.json").read_text())["model"]["decoder"]
    layers, kv_heads, head = config["num_hidden_layers"], config["num_key_value_heads"], config["head_size"]
    outputs = [o.name for o in session.get_outputs()]
    names = [f"past_key_values.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]

    def generate(prompt: np.ndarray, n: int) -> list[int]:
        empty = ort.OrtValue.ortvalue_from_numpy(np.zeros((1, kv_heads, 0, head), dtype=np.float32))
        past: list[Any] = [empty] * len(names)
        ids, tokens = prompt[None], []
        for _ in range(n):
            mask = np.ones((1, len(prompt) + len(tokens)), dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask}
            values = {k: ort.OrtValue.ortvalue_from_numpy(v) for k, v in feed.items()}
            logits, *past = session.run_with_ort_values(
                outputs, {**values, **dict(zip(names, past, strict=True))}
            )
            tokens.append(int(np.argmax(logits.numpy()[0, -1])))
            ids = np.asarray([[tokens[-1]]], dtype=np.int64)
        return tokens

    return generate


def _load(name: str, cache: Path, threads: int) -> Callable[[np.ndarray, int], list[int]]:
    if name == "docfn-int8":
        return _docfn(cache, "int8/decoder.onnx", threads)
    if name == "docfn-int4a8":
        return _docfn(cache, "int4-a8/decoder.onnx", threads)
    if name == "docfn-int8-prefill-int4a8-steps":
        return _docfn(cache, "int8/decoder.onnx", threads, steps="int4-a8/decoder.onnx")
    precision = name.rsplit("-", 1)[1]
    if name.startswith("genai-graph-"):
        return _genai_graph(cache / f"genai-{precision}", threads)
    return _genai(cache / f"genai-{precision}", threads)


def _prepare(cache: Path, wanted: list[str]) -> None:
    missing = [p for p in ("int4", "int8") if any(n.endswith(p) and n.startswith("genai") for n in wanted)]
    missing = [p for p in missing if not (cache / f"genai-{p}" / "genai_config.json").is_file()]
    if missing or not (cache / "int8" / "decoder.onnx").is_file():
        from benchmarks.vlm import prepare

        prepare(cache, False, [f"genai-{p}-vision-int8" for p in missing])


def run(args: argparse.Namespace) -> int:
    rounds, new_tokens = (1, 5) if args.quick else (args.rounds, args.new_tokens)
    wanted = [c for c in args.candidates.split(",") if c]
    _prepare(args.cache_dir, wanted)
    load_before = os.getloadavg()[0]
    loaded = {name: _load(name, args.cache_dir, args.threads) for name in wanted}
    prompt = np.random.default_rng(0).integers(400, 150_000, size=PROMPT_TOKENS).astype(np.int64)
    for generate in loaded.values():  # warm-up: first-run allocations and kernel selection
        generate(prompt, 2)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in loaded}
    for _ in range(rounds):
        for name, generate in loaded.items():
            first = harness.sample(lambda generate=generate: generate(prompt, 1))
            whole = harness.sample(lambda generate=generate: generate(prompt, new_tokens))
            samples[name].append(
                {
                    "prefill_s": first.seconds,
                    "prefill_cpu_s": first.cpu_seconds,
                    "decode_s": whole.seconds - first.seconds,
                    "decode_cpu_s": whole.cpu_seconds - first.cpu_seconds,
                    "load_average": os.getloadavg()[0],
                }
            )
    steps = new_tokens - 1
    results: dict[str, dict[str, float]] = {}
    for name, rows in samples.items():
        best = {
            key: min(row[key] for row in rows)
            for key in ("prefill_s", "prefill_cpu_s", "decode_s", "decode_cpu_s")
        }
        results[name] = {
            **{key: round(value, 3) for key, value in best.items()},
            "decode_tokens_per_s": round(steps / best["decode_s"], 2),
            "decode_cpu_ms_per_token": round(1000 * best["decode_cpu_s"] / steps, 1),
        }
    report = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": {**harness.machine(), "threads": args.threads},
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "rounds": rounds,
        "prompt_tokens": PROMPT_TOKENS,
        "new_tokens": new_tokens,
        "candidates": results,
        "rounds_detail": samples,
    }
    lines = [
        "# The VLM's language model: docfn's decoder loop beside onnxruntime-genai's",
        "",
        f"MinerU2.5's text model at its real size (random weights), a {PROMPT_TOKENS}-token prompt and "
        f"{new_tokens} greedy tokens, {args.threads} threads, candidates alternated in one process, "
        f"fastest of {rounds} rounds; {report['when']}, load average {report['load_average_before']} "
        f"before, {report['load_average_after']} after (a shared 2-CPU machine: wall seconds carry the "
        "neighbours' load, CPU seconds far less).",
        "",
        "| candidate | prefill wall (s) | prefill CPU (s) | decode wall (tokens/s) | decode CPU (ms/token) |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| `{name}` | {r['prefill_s']:.3f} | {r['prefill_cpu_s']:.3f} | {r['decode_tokens_per_s']:.1f} "
            f"| {r['decode_cpu_ms_per_token']:.1f} |"
        )
    lines += ["", "What each candidate is: `scripts/benchmarks/vlm_decoders.py`'s docstring."]
    print(harness.write_report(args.out, "vlm_decoders", report, "\n".join(lines) + "\n"))
    return 0
