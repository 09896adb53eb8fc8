"""The decoder's grouped-query attention without copies of the KV cache per query head.

transformers' eager attention repeats each KV head for the query heads that share it
(``repeat_kv``: Unsqueeze -> Tile -> Reshape, [B, kv, T, d] -> [B, heads, T, d]) before its two
MatMuls. Exported as is, every decoder step writes that repeated cache anew, per layer, for every
row of the batch: at MinerU2.5's 14 query heads over 2 KV heads, 7 copies of a cache that grows with
the batch and its longest sequence, so the step's cost grew with the batch far more than its
weights' MatMuls did (``docs/benchmarks/vlm_batching_decode.md``).

This rewrite lets the query heads of one group share their KV head through the MatMuls' batch
dimensions instead: queries [B, heads, S, d] are viewed as [B, kv, heads/kv * S, d] (the heads of a
group are consecutive, as ``repeat_kv`` orders them), multiplied with the KV head's keys
[B, kv, d, T] and values [B, kv, T, d], and the results viewed back as [B, heads, S, T] and
[B, heads, S, d]. Each score and each output is the same dot product over the same operands as
before; only the copies go.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any


def share_kv_heads(path: Path, heads: int, kv_heads: int) -> int:
    """Rewrite every ``repeat_kv`` feeding an attention MatMul in the graph at ``path`` (in place; the
    weights stay where they are). Returns how many MatMuls now read the KV heads directly."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    producer = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, list[Any]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    replaced: dict[int, list[Any]] = {}  # id(MatMul) -> the nodes that take its place
    constants: list[Any] = []

    def shape(tag: str, dims: list[int]) -> str:
        # A Constant node, not an initializer: a pack whose weights all go to external data
        # (save_graph) keeps it inline, where shape inference reads a Reshape's target shape.
        value = numpy_helper.from_array(np.asarray(dims, dtype=np.int64), f"{tag}_shape")
        constants.append(helper.make_node("Constant", [], [f"{tag}_shape"], name=f"{tag}_shape", value=value))
        return f"{tag}_shape"

    def node(op: str, inputs: list[str], output: str, **attributes: Any) -> Any:
        return helper.make_node(op, inputs, [output], name=f"{output}/{op}", **attributes)

    count = 0
    for tile in [node for node in graph.node if node.op_type == "Tile"]:
        unsqueeze = producer.get(tile.input[0])
        reshapes = [node for node in consumers[tile.output[0]] if node.op_type == "Reshape"]
        if unsqueeze is None or unsqueeze.op_type != "Unsqueeze" or len(reshapes) != 1:
            continue
        cache = unsqueeze.input[0]  # [B, kv, T, d]
        repeated = reshapes[0].output[0]  # [B, heads, T, d]
        for user in consumers[repeated]:
            perm = [helper.get_attribute_value(a) for a in user.attribute if a.name == "perm"]
            if user.op_type == "Transpose" and perm == [[0, 1, 3, 2]]:
                # Keys: scores = Q [B, heads, S, d] x K^T [B, heads, d, T].
                for matmul in consumers[user.output[0]]:
                    if matmul.op_type != "MatMul" or matmul.input[1] != user.output[0]:
                        continue
                    tag = f"gqa{count}"
                    count += 1
                    q, kt, scores = f"{tag}_q", f"{tag}_kt", f"{tag}_s"
                    replaced[id(matmul)] = [
                        node("Reshape", [matmul.input[0], shape(q, [0, kv_heads, -1, 0])], q),
                        node("Transpose", [cache], kt, perm=[0, 1, 3, 2]),
                        node("MatMul", [q, kt], scores),
                        node("Reshape", [scores, shape(f"{tag}_out", [0, heads, -1, 0])], matmul.output[0]),
                    ]
            elif user.op_type == "MatMul" and user.input[1] == repeated:
                # Values: out = P [B, heads, S, T] x V [B, heads, T, d].
                tag = f"gqa{count}"
                count += 1
                probs, out = f"{tag}_p", f"{tag}_o"
                replaced[id(user)] = [
                    node("Reshape", [user.input[0], shape(probs, [0, kv_heads, -1, 0])], probs),
                    node("MatMul", [probs, cache], out),
                    node("Reshape", [out, shape(f"{tag}_out", [0, heads, -1, 0])], user.output[0]),
                ]
    if not count:
        return 0
    nodes = list(constants)
    for node in graph.node:
        nodes.extend(replaced.get(id(node), [node]))
    del graph.node[:]
    graph.node.extend(_live(nodes, {output.name for output in graph.output}))
    onnx.save_model(model, str(path))
    return count


def _live(nodes: list[Any], outputs: set[str]) -> list[Any]:
    """``nodes`` without those whose outputs nothing reads (the repeats the rewrite left unused)."""
    while True:
        read = outputs | {name for node in nodes for name in node.input}
        kept = [node for node in nodes if any(output in read for output in node.output)]
        if len(kept) == len(nodes):
            return nodes
        nodes = kept
