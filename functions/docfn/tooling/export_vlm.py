"""``docfn models export-vlm``: a Qwen2-VL checkpoint (MinerU2.5) into a verified ONNX pack.

The checkpoint is loaded with transformers (the ``export`` extra; never in a function image), its
three graphs (``vlm_graphs``: vision tower + merger, token embedding, decoder with explicit KV
cache) are exported with torch's TorchScript-based ONNX exporter (static control flow, dynamic axes),
and the language model is optionally quantised: dynamic int8 MatMul with one activation scale per
row (``int8``, ``vlm_int8``: a sequence's tokens do not depend on its batch) or 4-bit block-wise
``MatMulNBits`` (``int4``); the vision tower with the same per-row int8 on every MatMul and Gemm
(``vision_precision`` ``int8``, the default). The pack carries the tokenizer and
the processor settings, and its manifest records parity against transformers' greedy ``generate()``
(``vlm_parity``) of the fp32 graphs, the quantised vision tower and the graphs as packed.

Why not onnxruntime-genai: 0.18's builder does take the language model as a Qwen2 LM, and it was
measured beside this export (``scripts/bench.py vlm_decoders`` and ``vlm``, docs/model-packs.md), but
that graph takes token ids with text-only positions, not the image's features and M-RoPE positions;
its Qwen2.5-VL text path runs only inside genai's own Qwen2.5-VL pipeline (Qwen2-VL's vision tower
differs), and its generator has no presence/frequency penalties, which MinerU's client sends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigurationError
from ..packs.manifest import (
    DEFAULT_VISION_PRECISION,
    VISION_PRECISIONS,
    VLM_PARITY_METRIC,
    Manifest,
    describe_file,
)
from ..packs.store import promote, scratch_dir
from ..tasks.vlm.preprocess import ProcessorConfig

log = logging.getLogger("docfn.packs")

OPSET = 17
PRECISIONS = ("fp32", "int8", "int4")
INT4_BLOCK_SIZE = 32
# Graphs whose weights exceed this keep them in one external ``.data`` file (protobuf's limit is 2 GB).
PROTOBUF_SAFE_BYTES = 1 << 30
FILES = {"vision": "vision.onnx", "embed": "embed.onnx", "decoder": "decoder.onnx"}


@dataclass(frozen=True)
class ExportOptions:
    name: str = "vlm-mineru25-int8"
    version: str = "1"
    precision: str = "int8"  # the language model's weights (the manifest's ``precision``)
    vision_precision: str = DEFAULT_VISION_PRECISION
    parity_tokens: int = 24  # new tokens per parity case
    external_data_over_bytes: int = PROTOBUF_SAFE_BYTES


def _load(checkpoint: Path) -> Any:
    try:
        import torch
        from transformers import Qwen2VLForConditionalGeneration
    except ImportError as exc:
        raise ConfigurationError(
            f"export-vlm needs torch and transformers ({exc}): pip install 'docfn[export]'"
        ) from exc

    if not (checkpoint / "config.json").is_file():
        raise ConfigurationError(f"{checkpoint} is not a transformers checkpoint (no config.json)")
    config = json.loads((checkpoint / "config.json").read_text())
    if "Qwen2VLForConditionalGeneration" not in config.get("architectures", []):
        raise ConfigurationError(
            f"{checkpoint}: export-vlm takes Qwen2VLForConditionalGeneration checkpoints "
            f"(MinerU2.5), not {config.get('architectures')}"
        )
    model = Qwen2VLForConditionalGeneration.from_pretrained(
        checkpoint, dtype=torch.float32, attn_implementation="eager"
    )
    return model.eval()


def pack_config(model: Any, checkpoint: Path) -> dict[str, Any]:
    """What the runtime needs besides the graphs: shapes, token ids, stop tokens, processor settings."""
    from tokenizers import Tokenizer

    text = model.config.text_config
    tokenizer = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))

    def token(name: str) -> int:
        found = tokenizer.token_to_id(name)
        if found is None:
            raise ConfigurationError(f"{checkpoint}/tokenizer.json has no {name} token")
        return int(found)

    processor_path = checkpoint / "preprocessor_config.json"
    processor = json.loads(processor_path.read_text()) if processor_path.is_file() else {}
    # Newer processor configs give the pixel-count limits as size.shortest_edge / size.longest_edge.
    size = processor.get("size") or {}
    for limit, edge in (("min_pixels", "shortest_edge"), ("max_pixels", "longest_edge")):
        if limit not in processor and size.get(edge):
            processor[limit] = size[edge]
    vision = model.config.vision_config
    processor.update(
        patch_size=vision.patch_size,
        temporal_patch_size=vision.temporal_patch_size,
        merge_size=vision.spatial_merge_size,
    )
    return {
        "architecture": "Qwen2VLForConditionalGeneration",
        "text": {
            "layers": text.num_hidden_layers,
            "heads": text.num_attention_heads,
            "kv_heads": text.num_key_value_heads,
            "head_dim": text.hidden_size // text.num_attention_heads,
            "hidden": text.hidden_size,
            "vocab": text.vocab_size,
        },
        "tokens": {
            "image": model.config.image_token_id,
            "vision_start": model.config.vision_start_token_id,
            "vision_end": model.config.vision_end_token_id,
            "im_start": token("<|im_start|>"),
            "im_end": token("<|im_end|>"),
            "endoftext": token("<|endoftext|>"),
        },
        "stop_tokens": sorted({token("<|im_end|>"), token("<|endoftext|>")}),
        "processor": ProcessorConfig.from_dict(processor).to_dict(),
    }


def export_graphs(model: Any, work: Path) -> dict[str, Path]:
    """The three fp32 graphs into ``work``."""
    import torch

    from .vlm_attention import DOMAIN as ATTENTION_DOMAIN
    from .vlm_attention import fuse_vision_attention
    from .vlm_gqa import share_kv_heads
    from .vlm_graphs import DecoderGraph, EmbedGraph, VisionGraph

    vision_config = model.config.vision_config
    text = model.config.text_config
    patch_dim = vision_config.in_channels * vision_config.temporal_patch_size * vision_config.patch_size**2
    paths = {role: work / name for role, name in FILES.items()}
    layers = text.num_hidden_layers
    head_dim = text.hidden_size // text.num_attention_heads
    past_names = [f"past_{kind}.{i}" for i in range(layers) for kind in ("key", "value")]
    present_names = [f"present_{kind}.{i}" for i in range(layers) for kind in ("key", "value")]
    # The TorchScript-based exporter (``dynamo=False``): these graphs have static control flow, and it
    # needs no onnxscript; torch warns that it is deprecated in favour of torch.export.
    with torch.no_grad(), contextlib.redirect_stdout(None), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            VisionGraph(model),
            (
                torch.zeros(16, patch_dim),
                torch.zeros(16, 2, dtype=torch.int64),
                torch.zeros(16, dtype=torch.int64),
            ),
            str(paths["vision"]),
            input_names=["pixel_values", "positions", "segment_ids"],
            output_names=["image_features"],
            dynamic_axes={
                "pixel_values": {0: "patches"},
                "positions": {0: "patches"},
                "segment_ids": {0: "patches"},
                "image_features": {0: "merged"},
            },
            opset_version=OPSET,
            custom_opsets={ATTENTION_DOMAIN: 1},
            dynamo=False,
        )
        fuse_vision_attention(paths["vision"])
        torch.onnx.export(
            EmbedGraph(model),
            (torch.zeros(1, 3, dtype=torch.int64),),
            str(paths["embed"]),
            input_names=["input_ids"],
            output_names=["inputs_embeds"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "inputs_embeds": {0: "batch", 1: "sequence"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
        batch, length, past_len = 1, 2, 3
        past = [torch.zeros(batch, text.num_key_value_heads, past_len, head_dim) for _ in past_names]
        past_axes = {name: {0: "batch", 2: "past"} for name in past_names}
        present_axes = {name: {0: "batch", 2: "total"} for name in present_names}
        torch.onnx.export(
            DecoderGraph(model),
            (
                torch.zeros(batch, length, text.hidden_size),
                torch.zeros(3, batch, length, dtype=torch.int64),
                torch.ones(batch, past_len + length, dtype=torch.int64),
                *past,
            ),
            str(paths["decoder"]),
            input_names=["inputs_embeds", "position_ids", "attention_mask", *past_names],
            output_names=["logits", *present_names],
            dynamic_axes={
                "inputs_embeds": {0: "batch", 1: "sequence"},
                "position_ids": {1: "batch", 2: "sequence"},
                "attention_mask": {0: "batch", 1: "total"},
                "logits": {0: "batch"},
                **past_axes,
                **present_axes,
            },
            opset_version=OPSET,
            dynamo=False,
        )
    # The query heads of a group read their KV head in place, not a copy of the cache per head.
    share_kv_heads(paths["decoder"], text.num_attention_heads, text.num_key_value_heads)
    return paths


def quantize_decoder(
    source: Path, target: Path, precision: str, work: Path, int4_accuracy_level: int | None = None
) -> None:
    """Weight-only quantisation of the language model's MatMuls (ONNX Runtime's quantisers).

    ``int4_accuracy_level``: MatMulNBits' compute type (None: fp32 activations; 4: int8 activations,
    quantised per block at run time)."""
    import onnx

    if precision == "int8":
        _quantize_int8(source, target, work, ["MatMul"])
        return
    if precision == "int4":
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        quantizer = MatMulNBitsQuantizer(
            onnx.load(str(source)),
            block_size=INT4_BLOCK_SIZE,
            is_symmetric=True,
            accuracy_level=int4_accuracy_level,
        )
        quantizer.process()
        large = _initializer_bytes(source) > PROTOBUF_SAFE_BYTES
        quantizer.model.save_model_to_file(str(target), use_external_data_format=large)
        return
    raise ConfigurationError(f"precision {precision!r}: choose one of {PRECISIONS}")


def quantize_vision(source: Path, target: Path, precision: str, work: Path) -> None:
    """The vision tower's weights at ``precision``: ``int8`` is dynamic int8 on every MatMul and Gemm
    (its nn.Linear layers run on 2-D patches and export as Gemm, which a MatMul-only quantisation
    skips; the merger's too), activations quantised per patch row at run time (``vlm_int8``)."""
    if precision == "int8":
        _quantize_int8(source, target, work, ["MatMul", "Gemm"])
        return
    raise ConfigurationError(f"vision precision {precision!r}: choose one of {VISION_PRECISIONS}")


def _quantize_int8(source: Path, target: Path, work: Path, op_types: list[str]) -> None:
    """Dynamic int8 with one activation scale per row (``vlm_int8``), not ONNX Runtime's
    ``quantize_dynamic``, whose one scale per tensor made a crop's tokens depend on its batch."""
    from .vlm_int8 import quantize_rowwise

    del work  # the rewrite writes no intermediate files
    quantize_rowwise(
        source.resolve(), target.resolve(), tuple(op_types), _initializer_bytes(source) > PROTOBUF_SAFE_BYTES
    )


def _initializer_bytes(path: Path) -> int:
    """The weights' size: the graph file and any external data the exporter wrote beside it."""
    import numpy as np
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    model = onnx.load(str(path), load_external_data=False)
    # From the shapes: torch's exporter writes one external file per tensor without a ``length`` entry
    # (MinerU2.5's vision tower), so the entries alone would count 0 bytes.
    return sum(
        int(np.prod(t.dims, dtype=np.int64)) * np.dtype(tensor_dtype_to_np_dtype(t.data_type)).itemsize
        for t in model.graph.initializer
    )


def save_graph(source: Path, target: Path, external_over_bytes: int) -> list[str]:
    """``source`` (with whatever external data it has) as ``target``: one self-contained file, or the
    graph plus all its weights in one ``TARGET.data`` file beside it when they exceed
    ``external_over_bytes`` (protobuf cannot hold more than 2 GB: MinerU2.5's vision tower is 2.7 GB
    in fp32). Returns the file names written."""
    import onnx

    model = onnx.load(str(source))
    if _initializer_bytes(source) <= external_over_bytes:
        onnx.save_model(model, str(target))
        return [target.name]
    data = f"{target.name}.data"
    onnx.save_model(
        model,
        str(target),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data,
        size_threshold=0,
    )
    return [target.name, data]


def export_checkpoint(checkpoint: Path, target: Path, options: ExportOptions) -> Path:
    """Export ``checkpoint`` into the pack directory ``target`` (written atomically, verified)."""
    if options.precision not in PRECISIONS:
        raise ConfigurationError(f"precision {options.precision!r}: choose one of {PRECISIONS}")
    if options.vision_precision not in VISION_PRECISIONS:
        raise ConfigurationError(
            f"vision precision {options.vision_precision!r}: choose one of {VISION_PRECISIONS}"
        )
    # Absolute: ONNX Runtime's quantiser resolves a relative model path against its own directory.
    target = target.absolute()
    model = _load(checkpoint)
    config = {**pack_config(model, checkpoint), "vision_precision": options.vision_precision}
    with scratch_dir(target.parent, prefix=f".{target.name}-export-", suffix=".part") as staging:
        work = staging / "_work"
        work.mkdir()
        graphs = export_graphs(model, work)
        sources = dict(graphs)
        if options.precision != "fp32":
            sources["decoder"] = work / f"decoder.{options.precision}.onnx"
            quantize_decoder(graphs["decoder"], sources["decoder"], options.precision, work)
        if options.vision_precision != "fp32":
            sources["vision"] = work / f"vision.{options.vision_precision}.onnx"
            quantize_vision(graphs["vision"], sources["vision"], options.vision_precision, work)
        roles: dict[str, str] = {}
        for role, source in sources.items():
            written = save_graph(source, staging / FILES[role], options.external_data_over_bytes)
            roles[role] = written[0]
            roles.update({f"{role}_data": name for name in written[1:]})
        shutil.copyfile(checkpoint / "tokenizer.json", staging / "tokenizer.json")
        roles["tokenizer"] = "tokenizer.json"
        parity = _parity(model, staging, config, graphs, options)
        shutil.rmtree(work)
        manifest = Manifest(
            name=options.name,
            version=options.version,
            tasks=["vlm"],
            runtime="onnxruntime",
            precision=options.precision,
            files=[describe_file(staging, path, role) for role, path in roles.items()],
            source={"checkpoint": checkpoint.name, "exporter": _versions()},
            config=config,
            accuracy={"metric": VLM_PARITY_METRIC, **parity},
        )
        manifest.write(staging)
        promote(staging, target)
    log.info(
        "exported %s -> %s (language model %s, vision %s)",
        checkpoint,
        target,
        options.precision,
        options.vision_precision,
    )
    return target


def _parity(
    model: Any, staging: Path, config: dict[str, Any], graphs: dict[str, Path], options: ExportOptions
) -> dict[str, Any]:
    """Greedy parity with transformers: ``fp32_decoder`` of the fp32 graphs (exact, else the export
    is wrong); ``{vision}_vision`` of the quantised vision tower with the fp32 decoder (plus its image
    features' cosine with the fp32 tower's); ``{precision}_decoder`` of the graphs as packed."""
    from .vlm_parity import measure_parity, parity_cases, vision_feature_cosines

    cases = parity_cases(config)
    tokens = options.parity_tokens
    fp32 = {"vision": graphs["vision"], "decoder": graphs["decoder"]}
    parity = {"fp32_decoder": measure_parity(model, staging, config, cases, tokens, fp32)}
    if options.vision_precision != "fp32":
        quantised = {"decoder": graphs["decoder"]}
        parity[f"{options.vision_precision}_vision"] = {
            **vision_feature_cosines(graphs["vision"], staging / FILES["vision"], config, cases),
            **measure_parity(model, staging, config, cases, tokens, quantised),
        }
    if options.precision != "fp32":
        parity[f"{options.precision}_decoder"] = measure_parity(model, staging, config, cases, tokens)
    return parity


def export_random_tiny(target: Path, options: ExportOptions) -> Path:
    """A tiny random Qwen2-VL checkpoint (``vlm_checkpoint``) exported as a pack at ``target``."""
    from .vlm_checkpoint import write_tiny_checkpoint

    target = target.absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    with scratch_dir(target.parent, prefix=f".{target.name}-checkpoint-") as checkpoint:
        write_tiny_checkpoint(checkpoint)
        return export_checkpoint(checkpoint, target, options)


def _versions() -> dict[str, str]:
    import onnxruntime
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
