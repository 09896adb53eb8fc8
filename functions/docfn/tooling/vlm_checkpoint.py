"""Randomly initialised Qwen2-VL checkpoints (transformers layout): tiny for tests and demos, and at
MinerU2.5-1.2B's real dimensions for the benchmark (``scripts/bench.py vlm``).

Same architecture as MinerU2.5-1.2B (``Qwen2VLForConditionalGeneration``), scaled down: 2 vision
blocks, 2 text layers, small widths, and the M-RoPE sections scaled with the head size (MinerU2.5:
head_dim 64, ``mrope_section [8, 12, 12]``; here head_dim 16, ``[2, 3, 3]``, summing to head_dim / 2).
Patch 14, temporal patch 2, spatial merge 2 as the real model. The tokenizer is a small byte-level
BPE trained with ``tokenizers`` on a built-in corpus, carrying Qwen2-VL's special tokens and
MinerU2.5's layout/table tokens, so prompts and chat markup tokenise as they do for the real model.

The real-size configuration (``real_size_config``) follows MinerU2.5-2509-1.2B's public config: a
Qwen2-VL vision tower (675M parameters: depth 32, embed 1280, 16 heads, MLP ratio 4, QuickGELU) whose
2x2 merger projects into a Qwen2-0.5B text model (hidden 896, 24 layers, 14 heads, 2 KV heads,
intermediate 4864, vocab 151936, tied embeddings, rope theta 1e6, M-RoPE [8, 12, 12]). It keeps the
small tokenizer: the benchmark times graphs, not text, and every id the tokenizer makes exists in the
151936-row embedding.

The random weights are drawn here (``seeded_weights``), not by transformers' ``_init_weights`` or
torch's default initialisation: those change between releases (under transformers 5.25 this code
made another tiny model than under 5.24), and every figure the tests measure on the tiny model would
move with them. Loading a checkpoint (``export_vlm._load``, real MinerU2.5 weights included) is untouched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..tasks.vlm.preprocess import ProcessorConfig

# Qwen2-VL's special tokens (ids follow the base vocabulary in this order, as in Qwen2's tokenizer).
QWEN2_VL_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# MinerU2.5's layout references and OTSL table-structure tokens.
MINERU_TOKENS = ["<|ref_start|>", "<|ref_end|>", "<fcel>", "<ecel>", "<lcel>", "<ucel>", "<xcel>", "<nl>"]
TINY_VOCAB = 384
TINY_SEED = 1234
# Processor limits for the tiny pack: crops up to ~224x224 px keep the tests to seconds.
TINY_PROCESSOR = ProcessorConfig(min_pixels=56 * 56, max_pixels=28 * 28 * 64)
# Qwen2-VL's processor limits (its preprocessor_config.json): MinerU's 1036x1036 layout view passes
# unresized (74x74 patches).
REAL_PROCESSOR = ProcessorConfig(min_pixels=56 * 56, max_pixels=28 * 28 * 16384)

_CORPUS = [
    "You are a helpful assistant.",
    "\nLayout Detection:",
    "\nText Recognition:",
    "\nTable Recognition:",
    "\nFormula Recognition:",
    "\nImage Analysis:",
    "text title table figure formula caption header footer list code image chart equation",
    "0 1 2 3 4 5 6 7 8 9 10 100 250 500 750 1000",
    "\\frac{a}{b} + \\sqrt{x^2} = \\sum_{i=1}^{n} \\alpha_i",
    "The quick brown fox jumps over the lazy dog. Results, methods and discussion.",
]


def tiny_config(vocab_size: int, token_ids: dict[str, int]) -> dict[str, Any]:
    """A Qwen2VLConfig (as ``config.json``) of the real architecture at toy widths."""
    return {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "model_type": "qwen2_vl",
        "image_token_id": token_ids["<|image_pad|>"],
        "video_token_id": token_ids["<|video_pad|>"],
        "vision_start_token_id": token_ids["<|vision_start|>"],
        "vision_end_token_id": token_ids["<|vision_end|>"],
        "tie_word_embeddings": True,
        "vision_config": {
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 64,
            "num_heads": 2,
            "mlp_ratio": 2,
            "hidden_act": "quick_gelu",
            "in_channels": 3,
            "patch_size": 14,
            "temporal_patch_size": 2,
            "spatial_merge_size": 2,
            # Wider than the 0.02 default: a random model with near-tied logits would make greedy
            # parity a test of rounding noise, not of the graphs.
            "initializer_range": 0.2,
        },
        "text_config": {
            "vocab_size": vocab_size,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "hidden_act": "silu",
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": token_ids["<|endoftext|>"],
            "eos_token_id": token_ids["<|im_end|>"],
            "initializer_range": 0.2,
            "tie_word_embeddings": True,
        },
    }


def real_size_config(vocab_size: int, token_ids: dict[str, int]) -> dict[str, Any]:
    """A Qwen2VLConfig (as ``config.json``) at MinerU2.5-1.2B's dimensions; ``vocab_size`` is ignored
    (the real vocabulary's 151936 rows are kept whatever tokenizer is packed)."""
    del vocab_size
    config = tiny_config(151936, token_ids)
    config["vision_config"].update(
        depth=32, embed_dim=1280, hidden_size=896, num_heads=16, mlp_ratio=4, initializer_range=0.02
    )
    config["text_config"].update(
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [8, 12, 12]},
        initializer_range=0.02,
    )
    return config


def tiny_tokenizer(path: Path, vocab_size: int = TINY_VOCAB) -> dict[str, int]:
    """Train and save a byte-level BPE ``tokenizer.json``; return the special tokens' ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(QWEN2_VL_SPECIAL_TOKENS) - len(MINERU_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS, trainer)
    tokenizer.add_special_tokens(QWEN2_VL_SPECIAL_TOKENS + MINERU_TOKENS)
    tokenizer.save(str(path))
    return {token: int(tokenizer.token_to_id(token)) for token in QWEN2_VL_SPECIAL_TOKENS + MINERU_TOKENS}


def write_tiny_checkpoint(target: Path, seed: int = TINY_SEED) -> Path:
    """A transformers checkpoint directory: config, random weights, tokenizer, processor settings."""
    return write_random_checkpoint(target, tiny_config, TINY_PROCESSOR, seed)


def write_random_checkpoint(
    target: Path,
    make_config: Callable[[int, dict[str, int]], dict[str, Any]],
    processor_config: ProcessorConfig,
    seed: int = TINY_SEED,
) -> Path:
    """A random checkpoint of ``make_config(vocab_size, token_ids)`` with the small tokenizer."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    target.mkdir(parents=True, exist_ok=True)
    token_ids = tiny_tokenizer(target / "tokenizer.json")
    from tokenizers import Tokenizer

    vocab_size = Tokenizer.from_file(str(target / "tokenizer.json")).get_vocab_size()
    config = Qwen2VLConfig(**make_config(vocab_size, token_ids))
    model = Qwen2VLForConditionalGeneration(config).to(torch.float32).eval()
    seeded_weights(model, seed)
    model.generation_config.eos_token_id = [token_ids["<|im_end|>"], token_ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = token_ids["<|endoftext|>"]
    model.save_pretrained(target)
    processor = {"image_processor_type": "Qwen2VLImageProcessor", **processor_config.to_dict()}
    (target / "preprocessor_config.json").write_text(json.dumps(processor, indent=2) + "\n")
    return target


def seeded_weights(model: Any, seed: int) -> None:
    """Overwrite every tensor the checkpoint saves (``state_dict``: parameters and persistent buffers)
    with values that depend only on ``seed``, the tensor's name and its shape.

    Each tensor draws from its own numpy stream, seeded by ``seed`` and a hash of its name (so adding
    or renaming one tensor leaves the others' values alone), in float32: matrices and embeddings
    (``*.weight`` of 2 or more dimensions) from normal(0, initializer_range) of their tower's config
    (the tiny config's 0.2: see ``tiny_config``), norm scales (1-D ``*.weight``) ones, biases zeros,
    as transformers' own init would lay them out. A tensor that fits none of these (a persistent
    buffer a new transformers adds, say) fails here rather than keeping whatever init gave it.
    Tied tensors (the LM head is the token embedding) are one tensor, drawn once under their first
    name in sorted order. Non-persistent buffers (the rotary ``inv_freq``) are not saved: loading
    recomputes them from the config, as for any real checkpoint.
    """
    import numpy as np
    import torch

    vision_std = float(model.config.vision_config.initializer_range)
    text_std = float(model.config.text_config.initializer_range)
    owners: dict[int, tuple[str, Any]] = {}
    for name, tensor in sorted(model.state_dict(keep_vars=True).items()):
        owners.setdefault(id(tensor), (name, tensor))
    with torch.no_grad():
        for name, tensor in owners.values():
            shape = tuple(tensor.shape)
            if name.endswith(".bias"):
                values = np.zeros(shape, dtype=np.float32)
            elif name.endswith(".weight") and len(shape) == 1:
                values = np.ones(shape, dtype=np.float32)
            elif name.endswith(".weight") and len(shape) >= 2:
                std = vision_std if "visual" in name.split(".") else text_std
                key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:16], "little")
                rng = np.random.default_rng([seed, key])
                values = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
            else:
                raise ValueError(f"no seeded initialisation for {name} {shape}")
            if tensor.dtype != torch.float32:
                raise ValueError(f"{name} is {tensor.dtype}; the random checkpoints are float32")
            tensor.copy_(torch.from_numpy(values))
