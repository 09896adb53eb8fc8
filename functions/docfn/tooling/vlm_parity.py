"""Greedy parity of an exported Qwen2-VL pack against transformers' ``generate()`` on the same weights.

A case is an image and a MinerU block prompt; both sides get the same token ids and the same
``pixel_values`` (the runtime's preprocessing), and decode greedily (``do_sample=False``). Agreement is
per case the common prefix of the two token sequences (up to the first stop token) over the longer one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..core.onnx_sessions import get_session
from ..tasks.vlm.model import VlmModel, vision_pass
from ..tasks.vlm.preprocess import ProcessorConfig, VisionInput, preprocess
from ..tasks.vlm.sampling import SamplingKnobs

BLOCK_PROMPTS = (
    "\nText Recognition:",
    "\nFormula Recognition:",
    "\nTable Recognition:",
    "\nImage Analysis:",
)
# Synthetic probe images (width, height) spanning the tiny processor's limits: strips, squares, columns.
_PROBE_SIZES = ((200, 60), (90, 120), (224, 224), (300, 40))


@dataclass(frozen=True)
class ParityCase:
    image: Image.Image
    prompt: str


def parity_cases(config: dict[str, Any], seed: int = 0) -> list[ParityCase]:
    """Deterministic noise-and-gradient images of several shapes, each with a block prompt."""
    rng = np.random.default_rng(seed)
    cases = []
    for n, (width, height) in enumerate(_PROBE_SIZES):
        ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
        noise = rng.integers(0, 256, size=(height, width, 3)).astype(np.float32)
        pixels = np.clip(0.5 * ramp + 0.5 * noise, 0, 255).astype(np.uint8)
        cases.append(ParityCase(Image.fromarray(pixels), BLOCK_PROMPTS[n % len(BLOCK_PROMPTS)]))
    return cases


def reference_tokens(
    model: Any,
    prompt: np.ndarray,
    images: list[VisionInput],
    max_new_tokens: int,
    stop_tokens: frozenset[int],
    repetition_penalty: float = 1.0,
) -> list[int]:
    """transformers' greedy ``generate()`` on the same inputs; the answer up to its first stop token."""
    import torch

    input_ids = torch.from_numpy(prompt)[None]
    with torch.no_grad():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            pixel_values=torch.from_numpy(np.concatenate([i.pixel_values for i in images])),
            image_grid_thw=torch.tensor([i.grid_thw for i in images]),
            mm_token_type_ids=(input_ids == model.config.image_token_id).int(),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            repetition_penalty=repetition_penalty,
            eos_token_id=sorted(stop_tokens),
            pad_token_id=sorted(stop_tokens)[0],
        )
    answer = out[0, len(prompt) :].tolist()
    cut = next((i for i, t in enumerate(answer) if t in stop_tokens), len(answer))
    return answer[:cut]


def agreement(ours: list[int], reference: list[int]) -> float:
    longest = max(len(ours), len(reference))
    if longest == 0:
        return 1.0
    prefix = next((i for i, (a, b) in enumerate(zip(ours, reference, strict=False)) if a != b), None)
    common = min(len(ours), len(reference)) if prefix is None else prefix
    return common / longest


def measure_parity(
    model: Any,
    pack_dir: Path,
    config: dict[str, Any],
    cases: list[ParityCase],
    max_new_tokens: int,
    overrides: dict[str, Path] | None = None,
) -> dict[str, Any]:
    """Agreement of the pack's graphs in ``pack_dir`` (or ``overrides`` per role) with transformers."""
    files = {role: pack_dir / f"{role}.onnx" for role in ("vision", "embed", "decoder")}
    files.update(overrides or {})
    files["tokenizer"] = pack_dir / "tokenizer.json"
    runtime = VlmModel(files, config, threads=1)
    processor = ProcessorConfig.from_dict(config["processor"])
    scores, exact = [], 0
    for case in cases:
        vision = preprocess(case.image, processor)
        prompt = runtime.chat_prompt([vision, case.prompt])
        ours = runtime.generate(prompt, [vision], max_new_tokens=max_new_tokens, knobs=SamplingKnobs())
        reference = reference_tokens(model, prompt, [vision], max_new_tokens, runtime.stop_tokens)
        scores.append(agreement(ours.token_ids, reference))
        exact += ours.token_ids == reference
    return {
        "cases": len(cases),
        "max_new_tokens": max_new_tokens,
        "exact_cases": exact,
        "mean_agreement": round(float(np.mean(scores)), 4),
        "min_agreement": round(float(np.min(scores)), 4),
    }


def vision_feature_cosines(
    reference: Path, vision: Path, config: dict[str, Any], cases: list[ParityCase]
) -> dict[str, Any]:
    """Cosine of each case's image features from the ``vision`` graph with the ``reference`` graph's
    (the fp32 tower): how close a quantised tower stays, before any decoding."""
    processor = ProcessorConfig.from_dict(config["processor"])
    sessions = [get_session(path, 1) for path in (reference, vision)]
    cosines = []
    for case in cases:
        image = [preprocess(case.image, processor)]
        ours, theirs = (vision_pass(session, image).reshape(-1).astype(np.float64) for session in sessions)
        cosines.append(float(ours @ theirs / (np.linalg.norm(ours) * np.linalg.norm(theirs))))
    return {
        "feature_cosine_mean": round(float(np.mean(cosines)), 5),
        "feature_cosine_min": round(float(np.min(cosines)), 5),
    }
