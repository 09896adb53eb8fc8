"""The vision tower's attention as ONNX Runtime's fused ``com.microsoft.MultiHeadAttention``.

Written out as plain ONNX ops, attention over a 1036x1036 page (5476 patches, 16 heads) materialises
[16, 5476, 5476] fp32 score tensors (1.9 GB each: scaled scores, + the image mask, softmax): 9 to 10
GB of arena with two of MinerU2.5's 32 blocks, half a block's time adding the dense mask and in
memory stalls (docs/benchmarks/vlm_vision_page.md). ``MultiHeadAttention`` without a mask runs
MLAS' flash attention on CPU (tiles that fit the L2 cache; no score tensor at all), but any mask
input sends it back to the dense path. So each layer's attention becomes an ``If``: a pass of one
image (every page) takes the flash kernel; a pass sharing several images (block crops, at most
``VISION_PASS_PATCHES`` patches) takes the dense kernel with a mask that keeps attention inside each
image, built inside the branch from ``segment_ids``.

The torch side is a placeholder op (``docfn::VisionAttention``) whose ``forward`` computes the same
attention for tracing; :func:`fuse_vision_attention` rewrites the exported graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

DOMAIN = "docfn"
PLACEHOLDER = "VisionAttention"
MS_DOMAIN = "com.microsoft"


class VisionAttention(torch.autograd.Function):
    """``q``, ``k``, ``v``: [1, patches, heads * head_dim] (rotary applied); ``segment_ids``
    [patches]; ``single``: a bool scalar, every patch in one image. Returns [1, patches, width]."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: object,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        segment_ids: torch.Tensor,
        single: torch.Tensor,
        heads: int,
        scale: float,
    ) -> torch.Tensor:
        del ctx, single  # the mask below is all zeros for one image
        patches = q.shape[1]
        q, k, v = (t.reshape(patches, heads, -1).transpose(0, 1) for t in (q, k, v))
        same_image = segment_ids[:, None] == segment_ids[None, :]
        bias = torch.zeros(same_image.shape, dtype=q.dtype).masked_fill(~same_image, torch.finfo(q.dtype).min)
        weights = torch.softmax(q @ k.transpose(1, 2) * scale + bias, dim=-1)
        return (weights @ v).transpose(0, 1).reshape(1, patches, -1)

    @staticmethod
    def symbolic(
        g: torch.Graph,
        q: torch.Value,
        k: torch.Value,
        v: torch.Value,
        segment_ids: torch.Value,
        single: torch.Value,
        heads: int,
        scale: float,
    ) -> torch.Value:
        out = g.op(f"{DOMAIN}::{PLACEHOLDER}", q, k, v, segment_ids, single, num_heads_i=heads, scale_f=scale)
        out.setType(q.type())
        return out


def fuse_vision_attention(path: Path) -> int:
    """Replace every placeholder in the graph at ``path`` (rewritten in place) by an ``If`` over two
    ``MultiHeadAttention`` nodes; returns how many were replaced."""
    import onnx
    from onnx import helper

    # The weights stay where the exporter put them (MinerU2.5's tower is over protobuf's 2 GB).
    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    nodes, replaced = [], 0
    for node in graph.node:
        if (node.domain, node.op_type) == (DOMAIN, PLACEHOLDER):
            node = _attention_if(node, f"attn{replaced}")
            replaced += 1
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    imports = [o for o in model.opset_import if o.domain != DOMAIN]
    if replaced and not any(o.domain == MS_DOMAIN for o in imports):
        imports.append(helper.make_opsetid(MS_DOMAIN, 1))
    del model.opset_import[:]
    model.opset_import.extend(imports)
    onnx.save_model(model, str(path))
    return replaced


def _attention_if(node: Any, tag: str) -> Any:
    """``If(single)``: then ``MultiHeadAttention(q, k, v)`` (flash); else the same with an attention
    bias [1, 1, S, S] of 0 within an image and float32's lowest across images."""
    from onnx import TensorProto, helper

    q, k, v, segments, single = node.input
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    name = {part: f"{tag}_{part}" for part in ("rows", "same", "zero", "low", "mask", "bias", "out")}

    def mha(extra: list[str], output: str) -> Any:
        return helper.make_node(
            "MultiHeadAttention",
            [q, k, v, *extra],
            [output],
            name=f"{tag}/{output}",
            domain=MS_DOMAIN,
            num_heads=attrs["num_heads"],
            scale=attrs["scale"],
        )

    def axes(output: str, values: list[int]) -> Any:
        tensor = helper.make_tensor(output, TensorProto.INT64, [len(values)], values)
        return helper.make_node("Constant", [], [output], value=tensor)

    def branch(suffix: str, body: list[Any], output: str) -> Any:
        result = helper.make_tensor_value_info(output, TensorProto.FLOAT, None)
        return helper.make_graph(body, f"{tag}_{suffix}", [], [result])

    flash = branch("one_image", [mha([], f"{tag}_flash")], f"{tag}_flash")
    masked = branch(
        "several_images",
        [
            axes(f"{tag}_axis1", [1]),
            helper.make_node("Unsqueeze", [segments, f"{tag}_axis1"], [name["rows"]]),  # [S, 1]
            helper.make_node("Equal", [name["rows"], segments], [name["same"]]),  # [S, S]
            helper.make_node("Constant", [], [name["zero"]], value_float=0.0),
            helper.make_node("Constant", [], [name["low"]], value_float=float(torch.finfo().min)),
            helper.make_node("Where", [name["same"], name["zero"], name["low"]], [name["mask"]]),
            axes(f"{tag}_axes01", [0, 1]),
            helper.make_node("Unsqueeze", [name["mask"], f"{tag}_axes01"], [name["bias"]]),
            mha(["", "", name["bias"]], name["out"]),
        ],
        name["out"],
    )
    return helper.make_node(
        "If", [single], list(node.output), name=f"{tag}/If", then_branch=flash, else_branch=masked
    )
