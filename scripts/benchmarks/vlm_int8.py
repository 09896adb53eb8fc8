"""The VLM's int8 MatMuls at MinerU2.5's real dimensions: one activation scale per tensor or per row.

ONNX Runtime's ``quantize_dynamic`` (one scale per tensor) made a crop's tokens depend on the crops
batched with it; ``docfn.tooling.vlm_int8`` quantises each row with its own scale. This measures what
that costs, and a weight-only alternative, on stacks of the real layers' weight MatMuls (random
weights; the attention, norms and rotary embedding are left out: they are the same in every variant):

- text: Qwen2 layers at 896 hidden / 4864 MLP / 128 KV (q, k, v share their input, gate and up
  theirs): a decode step of 1 and of 8 sequences, and a 108-token block prompt's prefill;
- vision: Qwen2-VL vision blocks at 1280 / 5120 as the export writes them (``Gemm``, transB): a
  448x112 block crop (256 patches) and a shared pass (1024).

Variants: ``fp32``; ``per-tensor`` (quantize_dynamic: batch-dependent); ``per-row`` (docfn's export);
``nbits8-a8`` (text only: ``MatMulNBits`` 8-bit weights, block 32, int8 activations per row block,
accuracy_level 4: also batch-invariant). One thread, variants interleaved, median milliseconds per
pass, and each variant's output cosine with fp32's. Writes vlm_int8.{json,md}; ``--quick``: one layer
per stack, three rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from benchmarks import harness
from docfn.tooling.vlm_int8 import quantize_rowwise

TEXT = {"hidden": 896, "kv": 128, "mlp": 4864}
VISION = {"hidden": 1280, "mlp": 5120}
TEXT_SHAPES = {"decode, 1 sequence": (1, 1), "decode, 8 sequences": (8, 1), "prefill, 108 tokens": (1, 108)}
VISION_SHAPES = {"block crop, 256 patches": 256, "shared pass, 1024 patches": 1024}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layers", type=int, default=4, help="layers per stack (--quick: 1)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (--quick: 3)")


def _builder(rng: np.random.Generator) -> Any:
    from onnx import helper, numpy_helper

    class Graph:
        def __init__(self) -> None:
            self.nodes: list[Any] = []
            self.inits: list[Any] = []

        def weight(self, name: str, shape: tuple[int, int], bias: bool = False) -> str:
            value = (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)
            self.inits.append(numpy_helper.from_array(value, name))
            if bias:
                self.inits.append(numpy_helper.from_array(np.zeros(shape[0], np.float32), f"{name}_b"))
            return name

        def op(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
            self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
            return output

        def model(self, x: str, dims: list[Any], out: str) -> Any:
            from onnx import TensorProto

            graph = helper.make_graph(
                self.nodes,
                "stack",
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                self.inits,
            )
            return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    return Graph()


def text_stack(layers: int, rng: np.random.Generator) -> Any:
    g, x = _builder(rng), "x"
    d, kv, mlp = TEXT["hidden"], TEXT["kv"], TEXT["mlp"]
    for i in range(layers):
        q = g.op("MatMul", [x, g.weight(f"q{i}", (d, d))], f"q{i}_out")
        for name in ("k", "v"):
            g.op("MatMul", [x, g.weight(f"{name}{i}", (d, kv))], f"{name}{i}_out")
        y = g.op("Add", [g.op("MatMul", [q, g.weight(f"o{i}", (d, d))], f"o{i}_out"), x], f"y{i}")
        gate = g.op("MatMul", [y, g.weight(f"gate{i}", (d, mlp))], f"gate{i}_out")
        up = g.op("MatMul", [y, g.weight(f"up{i}", (d, mlp))], f"up{i}_out")
        h = g.op("Mul", [gate, up], f"h{i}")
        x = g.op("Add", [g.op("MatMul", [h, g.weight(f"down{i}", (mlp, d))], f"down{i}_out"), y], f"x{i + 1}")
    return g.model("x", ["batch", "sequence", d], x)


def vision_stack(layers: int, rng: np.random.Generator) -> Any:
    from onnx import numpy_helper

    g, x = _builder(rng), "x"
    d, mlp = VISION["hidden"], VISION["mlp"]
    g.inits += [
        numpy_helper.from_array(np.array([v], np.int64), n) for n, v in (("s0", 0), ("s1", d), ("ax", 1))
    ]

    def linear(name: str, source: str, n: int, k: int) -> str:
        return g.op("Gemm", [source, g.weight(name, (n, k), bias=True), f"{name}_b"], f"{name}_out", transB=1)

    for i in range(layers):
        q = g.op("Slice", [linear(f"qkv{i}", x, 3 * d, d), "s0", "s1", "ax"], f"q{i}")
        y = g.op("Add", [linear(f"proj{i}", q, d, d), x], f"y{i}")
        h = g.op("Relu", [linear(f"fc1{i}", y, mlp, d)], f"h{i}")
        x = g.op("Add", [linear(f"fc2{i}", h, d, mlp), y], f"x{i + 1}")
    return g.model("x", ["patches", d], x)


def variants(stack: str, fp32: Path, work: Path) -> dict[str, Path]:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    ops = ("MatMul",) if stack == "text" else ("MatMul", "Gemm")
    paths = {
        "fp32": fp32,
        "per-tensor": work / f"{stack}.per-tensor.onnx",
        "per-row": work / f"{stack}.per-row.onnx",
    }
    with contextlib.chdir(work):  # the quantiser's scratch files
        quantize_dynamic(
            str(fp32), str(paths["per-tensor"]), op_types_to_quantize=list(ops), weight_type=QuantType.QInt8
        )
    quantize_rowwise(fp32, paths["per-row"], ops, large=False)
    if stack == "text":
        quantizer = MatMulNBitsQuantizer(
            onnx.load(str(fp32)), bits=8, block_size=32, is_symmetric=True, accuracy_level=4
        )
        quantizer.process()
        paths["nbits8-a8"] = work / f"{stack}.nbits8.onnx"
        quantizer.model.save_model_to_file(str(paths["nbits8-a8"]))
    return paths


def measure(paths: dict[str, Path], inputs: dict[str, np.ndarray], rounds: int) -> dict[str, Any]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sessions = {
        name: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
        for name, p in paths.items()
    }
    results: dict[str, Any] = {}
    for shape, x in inputs.items():
        outputs = {name: s.run(None, {"x": x})[0] for name, s in sessions.items()}  # also the warm-up
        times: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(rounds):
            for name, session in sessions.items():
                started = time.perf_counter()
                session.run(None, {"x": x})
                times[name].append(time.perf_counter() - started)
        reference = outputs["fp32"].ravel()
        results[shape] = {
            name: {
                "ms": round(1000 * statistics.median(times[name]), 2),
                "vs_per_tensor": round(
                    statistics.median(times[name]) / statistics.median(times["per-tensor"]), 3
                ),
                "cosine_vs_fp32": round(
                    float(
                        outputs[name].ravel()
                        @ reference
                        / np.linalg.norm(outputs[name])
                        / np.linalg.norm(reference)
                    ),
                    5,
                ),
            }
            for name in sessions
        }
    return results


def run(args: argparse.Namespace) -> int:
    layers, rounds = (1, 3) if args.quick else (args.layers, args.rounds)
    rng = np.random.default_rng(0)
    load_before = harness.load_average()[0]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="docfn-vlm-int8-") as scratch:
        work = Path(scratch)
        for stack, make, shapes in (
            ("text", text_stack, TEXT_SHAPES),
            ("vision", vision_stack, VISION_SHAPES),
        ):
            import onnx

            fp32 = work / f"{stack}.fp32.onnx"
            onnx.save(make(layers, rng), str(fp32))
            if stack == "text":
                inputs = {
                    k: rng.standard_normal((*v, TEXT["hidden"])).astype(np.float32) for k, v in shapes.items()
                }
            else:
                inputs = {
                    k: rng.standard_normal((v, VISION["hidden"])).astype(np.float32)
                    for k, v in shapes.items()
                }
            results[stack] = measure(variants(stack, fp32, work), inputs, rounds)
    report = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": {**harness.machine(), "onnxruntime": ort.__version__},
        "layers": layers,
        "rounds": rounds,
        "load_average_before": load_before,
        "load_average_after": harness.load_average()[0],
        "results": results,
    }
    lines = [
        "# The VLM's int8 MatMuls: one activation scale per tensor or per row",
        "",
        f"{layers} layer(s) per stack at MinerU2.5's dimensions, random weights, 1 thread,"
        f" {rounds} interleaved rounds (median ms per pass), {report['when']};"
        f" load average {load_before:.2f} before,"
        f" {report['load_average_after']:.2f} after (a shared, noisy machine: compare within a row).",
        "",
        "| stack, input | variant | ms | x per-tensor | cosine vs fp32 |",
        "|---|---|---|---|---|",
    ]
    for stack, by_shape in results.items():
        for shape, by_variant in by_shape.items():
            for name, row in by_variant.items():
                lines.append(
                    f"| {stack}, {shape} | {name} | {row['ms']} | {row['vs_per_tensor']}"
                    f" | {row['cosine_vs_fp32']} |"
                )
    print(harness.write_report(args.out, "vlm_int8", report, "\n".join(lines)))
    return 0
