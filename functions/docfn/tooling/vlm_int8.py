"""Dynamic int8 MatMul/Gemm with one activation scale per row: a row's answer never depends on its batch.

ONNX Runtime's ``quantize_dynamic`` quantises activations with ``DynamicQuantizeLinear``, one scale
and zero point over the whole tensor. In the VLM that tensor holds every sequence of a decoder batch
(and every image of a shared vision pass), so the largest activation anywhere in the batch sets the
step every other row is rounded to: a crop's tokens changed with what it was batched with, and the
first answer got cached. ``MatMulIntegerToFloat`` and ``DynamicQuantizeMatMul`` (ONNX Runtime's fused
forms) take one scale for A (or one per column of A), never one per row, so this rewrite builds the
per-row form from standard ops:

- weights: int8, symmetric, one scale per output column (``[K, N]``), as initializers;
- activations, once per distinct input (q/k/v and gate/up share theirs): ``amax = ReduceMax(|A|)``
  over the last axis, ``q = Round(A * (127 / amax)) + 128`` as uint8, so every row has its own scale
  and all share the zero point 128 (``MatMulInteger`` takes a scalar zero point; uint8 x int8 is
  MLAS's VNNI fast path);
- ``MatMulInteger`` (exact integer sums: rows cannot interact) -> float -> x row scale x column scale
  (+ the Gemm's bias).

Each row's quantisation reads only that row, and the integer product is exact, so a row's output is
the same whatever else shares the tensor. Weights the rewrite cannot handle (not a 2-D initializer,
a Gemm with ``transA`` or ``alpha``/``beta`` other than 1) stay fp32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# A row of zeros (left padding, masked positions) gets this scale instead of dividing by zero.
_MIN_AMAX = 1e-8


@dataclass
class _Rewrite:
    """The nodes and initializers the rewrite adds, and the per-row quantisation of each input."""

    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    quantised: dict[str, tuple[str, str]] = field(default_factory=dict)  # input -> (uint8, row scale)
    count: int = 0

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}_rq{self.count}"

    def constant(self, base: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], base: str, **attributes: object) -> str:
        from onnx import helper

        output = self.name(f"{base}_{op}")
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def rows(self, activation: str) -> tuple[str, str]:
        """``activation`` as uint8 with one scale per row (zero point 128), computed once per input."""
        if activation not in self.quantised:
            base = activation.replace("/", "_").strip("_") or "a"
            amax = self.node("ReduceMax", [self.node("Abs", [activation], base)], base, axes=[-1], keepdims=1)
            amax = self.node("Max", [amax, self.constant(base, np.float32(_MIN_AMAX))], base)
            scale = self.node("Div", [amax, self.constant(base, np.float32(127.0))], base)
            # A multiply by the row's 127 / amax (one small division per row), not a division per element;
            # |steps| <= 127 up to an ulp, which Round brings back, so no Clip is needed before the Cast.
            inverse = self.node("Div", [self.constant(base, np.float32(127.0)), amax], base)
            steps = self.node("Round", [self.node("Mul", [activation, inverse], base)], base)
            shifted = self.node("Add", [steps, self.constant(base, np.float32(128.0))], base)
            self.quantised[activation] = (self.node("Cast", [shifted], base, to=2), scale)  # 2: uint8
        return self.quantised[activation]


def quantise_weight(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[K, N]`` fp32 -> int8 weights and one symmetric scale per output column ``[N]``."""
    amax = np.abs(weight).max(axis=0)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    return np.clip(np.rint(weight / scale), -127, 127).astype(np.int8), scale


def quantize_rowwise(source: Path, target: Path, op_types: tuple[str, ...], large: bool) -> int:
    """Rewrite every MatMul (and Gemm, when asked) of ``source`` with a constant 2-D weight into the
    per-row int8 form above; write ``target`` (weights in one external file when ``large``). Returns
    how many were rewritten."""
    import onnx

    model = onnx.load(str(source))
    graph = model.graph
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset > 17:  # ReduceMax's ``axes`` became an input in opset 18; export_vlm writes opset 17
        raise ValueError(f"{source}: the per-row int8 rewrite takes opset <= 17 graphs, not {opset}")
    weights = {init.name: init for init in graph.initializer}
    rewrite = _Rewrite()
    kept, used = [], set()
    zero_point = rewrite.constant("a_zero_point", np.uint8(128))
    for node in graph.node:
        weight = _weight(node, weights, op_types)
        if weight is None:
            kept.append(node)
            continue
        quantised, scale = quantise_weight(weight)
        base = node.name.replace("/", "_").strip("_") or node.op_type
        q_name, s_name = (
            rewrite.constant(f"{base}_w_int8", quantised),
            rewrite.constant(f"{base}_w_scale", scale),
        )
        used.add(node.input[1])
        activation, row_scale = rewrite.rows(node.input[0])
        product = rewrite.node("MatMulInteger", [activation, q_name, zero_point], base)
        real = rewrite.node("Cast", [product], base, to=1)  # 1: float
        scaled = rewrite.node("Mul", [rewrite.node("Mul", [real, row_scale], base), s_name], base)
        if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
            scaled = rewrite.node("Add", [scaled, node.input[2]], base)
        rewrite.nodes[-1].output[0] = node.output[0]
        kept.append(rewrite.nodes.pop())
        # The rewrite's nodes go in just before the node they replace (topological order is kept:
        # each depends only on the activation, already computed, and on constants).
        kept[-1:-1] = rewrite.nodes
        rewrite.nodes = []
    still_used = {name for node in kept for name in node.input} | {o.name for o in graph.output}
    graph.ClearField("node")
    graph.node.extend(kept)
    survivors = [init for init in graph.initializer if init.name not in used or init.name in still_used]
    graph.ClearField("initializer")
    graph.initializer.extend([*survivors, *rewrite.initializers])
    if large:
        onnx.save_model(model, str(target), save_as_external_data=True, location=f"{target.name}.data")
    else:
        onnx.save_model(model, str(target))
    return sum(1 for node in kept if node.op_type == "MatMulInteger")


def _weight(node: object, weights: dict, op_types: tuple[str, ...]) -> np.ndarray | None:
    """The node's weight as ``[K, N]`` fp32 when the per-row rewrite applies to it, else None."""
    from onnx import TensorProto, numpy_helper

    op = node.op_type  # type: ignore[attr-defined]
    if op not in op_types or len(node.input) < 2 or node.input[1] not in weights:  # type: ignore[attr-defined]
        return None
    init = weights[node.input[1]]  # type: ignore[attr-defined]
    if init.data_type != TensorProto.FLOAT or len(init.dims) != 2:
        return None
    weight = numpy_helper.to_array(init)
    if op == "Gemm":
        attrs = {a.name: a for a in node.attribute}  # type: ignore[attr-defined]
        if attrs.get("transA") and attrs["transA"].i:
            return None
        if any(name in attrs and attrs[name].f != 1.0 for name in ("alpha", "beta")):
            return None
        if attrs.get("transB") and attrs["transB"].i:
            weight = weight.T
    return np.ascontiguousarray(weight, dtype=np.float32)


__all__ = ["quantise_weight", "quantize_rowwise"]
