"""Exact graph rewrites a recipe applies to a model taken from its wheel (build time, ``onnx``).

``hardswish``: Paddle2ONNX writes each hard-swish as four element-wise ops, ``x * Clip(x + 3, 0, 6)
/ 6``. ONNX Runtime fuses none of them into the convolution before it, and its NCHWc layout
transformer (level ALL) cannot block them, so every one of them runs unfused on the whole feature
map with a reorder to NCHW and back around it. Rewritten as ``x * HardSigmoid(x)`` (alpha 1/6, beta
1/2: the same function), the convolution, its activation and the product fuse and stay blocked. On
the CDLA PicoDet layout model (94 such activations) one run took 0.62x the time (2 CPUs; ``scripts/
bench.py text_layer``), its outputs within 6e-6 of the original's (float rounding).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..core.errors import ConfigurationError

REWRITES = ("hardswish",)


def _onnx() -> Any:
    try:
        return importlib.import_module("onnx")
    except ImportError as exc:
        raise ConfigurationError(
            f"this pack's recipe rewrites its model graph with the onnx package ({exc}), build-time"
            " tooling a function image leaves out: install it (`scripts/setup` has it, or"
            " `pip install -e .[packs]`), or fetch the built pack from the model store"
        ) from exc


def _scalar(value: Any) -> float | None:
    return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None


def fuse_hardswish(model: Any) -> int:
    """Rewrites every ``x * Clip(x + 3, 0, 6) / 6`` in ``model`` (an onnx ModelProto, in place) as
    ``x * HardSigmoid(x)``; returns how many. Only chains whose intermediate values have no other
    reader are rewritten."""
    onnx = _onnx()
    graph = model.graph
    constants: dict[str, Any] = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = onnx.numpy_helper.to_array(node.attribute[0].t)
    producer = {name: node for node in graph.node for name in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1

    replaced: dict[int, list[Any]] = {}
    removed: set[int] = set()
    for div in graph.node:
        if div.op_type != "Div" or _scalar(constants.get(div.input[1])) != 6.0:
            continue
        mul = producer.get(div.input[0])
        if mul is None or mul.op_type != "Mul" or len(mul.input) != 2:
            continue
        found = [
            (clip, mul.input[1 - n])
            for n, clip in enumerate(producer.get(name) for name in mul.input)
            if clip is not None and clip.op_type == "Clip" and len(clip.input) == 3
        ]
        if len(found) != 1:
            continue
        clip, x = found[0]
        add = producer.get(clip.input[0])
        if add is None or add.op_type != "Add" or x not in add.input:
            continue
        three = _scalar(constants.get(next((name for name in add.input if name != x), "")))
        low, high = _scalar(constants.get(clip.input[1])), _scalar(constants.get(clip.input[2]))
        if (three, low, high) != (3.0, 0.0, 6.0):
            continue
        if any(readers.get(node.output[0], 0) != 1 for node in (add, clip, mul)):
            continue
        gate = f"{div.output[0]}.hard_sigmoid"
        replaced[id(div)] = [
            onnx.helper.make_node("HardSigmoid", [x], [gate], name=gate, alpha=1.0 / 6.0, beta=0.5),
            onnx.helper.make_node("Mul", [x, gate], [div.output[0]], name=f"{div.output[0]}.hard_swish"),
        ]
        removed |= {id(add), id(clip), id(mul)}
    nodes = [new for node in graph.node if id(node) not in removed for new in replaced.get(id(node), [node])]
    del graph.node[:]
    graph.node.extend(nodes)
    return len(replaced)


def rewrite(path: Path, names: list[str]) -> dict[str, int]:
    """Applies the named rewrites to the model file at ``path`` (in place); returns the count of each."""
    unknown = sorted(set(names) - set(REWRITES))
    if unknown:
        raise ConfigurationError(f"unknown graph rewrite(s) {unknown}; known: {list(REWRITES)}")
    onnx = _onnx()
    model = onnx.load(str(path))
    counts = {"hardswish": fuse_hardswish(model)} if "hardswish" in names else {}
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return counts
