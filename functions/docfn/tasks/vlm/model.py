"""A Qwen2-VL pack at run time: image encoding, the chat prompt, and greedy decoding with a KV cache.

ONNX Runtime + numpy + tokenizers only (no torch). The pack's graphs are described in
``docfn.tooling.vlm_graphs``; its manifest ``config`` gives the text model's shape, the special token
ids, the stop tokens and the processor settings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from ...core.errors import BadInput, BadOptions, DeadlineExceeded
from ...core.onnx_sessions import get_session
from ...packs.manifest import Manifest
from .preprocess import ProcessorConfig, VisionInput, vision_positions
from .rope_index import rope_index
from .sampling import SamplingKnobs, adjust_logits

DEFAULT_SYSTEM = "You are a helpful assistant."


@dataclass(frozen=True)
class TextShape:
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    hidden: int
    vocab: int


@dataclass(frozen=True)
class Generation:
    token_ids: list[int]
    finish_reason: str  # "stop" (a stop token, not included) or "length" (max_new_tokens reached)
    prompt_tokens: int


class VlmModel:
    """The loaded pack: three ONNX sessions, the tokenizer and the pack's settings."""

    def __init__(self, files: dict[str, Path], config: dict[str, Any], threads: int = 0) -> None:
        """``files``: role -> path (``vision``, ``embed``, ``decoder``, ``tokenizer``); ``config``: the
        manifest's config."""
        self.shape = TextShape(**config["text"])
        self.tokens: dict[str, int] = dict(config["tokens"])
        self.stop_tokens = frozenset(int(t) for t in config["stop_tokens"])
        self.processor = ProcessorConfig.from_dict(config["processor"])
        self.tokenizer = Tokenizer.from_file(str(files["tokenizer"]))
        self._vision = get_session(files["vision"], threads)
        self._embed = get_session(files["embed"], threads)
        self._decoder = get_session(files["decoder"], threads)

    @classmethod
    def from_pack(cls, pack_dir: Path, manifest: Manifest, threads: int = 0) -> VlmModel:
        return cls({f.role: pack_dir / f.path for f in manifest.files}, manifest.config, threads)

    def encode_images(self, images: list[VisionInput]) -> np.ndarray:
        """Merged image features [sum of merged tokens, hidden], in order, in one vision pass."""
        if not images:
            return np.zeros((0, self.shape.hidden), dtype=np.float32)
        positions = np.concatenate([vision_positions(i.grid_thw, i.merge_size) for i in images])
        segments = np.concatenate(
            [np.full(i.pixel_values.shape[0], n, dtype=np.int64) for n, i in enumerate(images)]
        )
        pixels = np.concatenate([i.pixel_values for i in images])
        (features,) = self._vision.run(
            None, {"pixel_values": pixels, "positions": positions, "segment_ids": segments}
        )
        return features

    def chat_prompt(
        self, content: list[str | VisionInput], system: str | None = DEFAULT_SYSTEM
    ) -> np.ndarray:
        """Token ids of Qwen2-VL's chat template for one user turn, ready for the assistant's answer:
        an image becomes ``<|vision_start|>``, one ``<|image_pad|>`` per merged patch, ``<|vision_end|>``."""
        ids: list[int] = []

        def text(value: str) -> None:
            ids.extend(self.tokenizer.encode(value, add_special_tokens=False).ids)

        if system is not None:
            text(f"<|im_start|>system\n{system}<|im_end|>\n")
        text("<|im_start|>user\n")
        for part in content:
            if isinstance(part, VisionInput):
                ids.append(self.tokens["vision_start"])
                ids.extend([self.tokens["image"]] * part.merged_tokens)
                ids.append(self.tokens["vision_end"])
            else:
                text(part)
        text("<|im_end|>\n<|im_start|>assistant\n")
        return np.asarray(ids, dtype=np.int64)

    def _embed_ids(self, ids: np.ndarray) -> np.ndarray:
        (embeds,) = self._embed.run(None, {"input_ids": ids.reshape(1, -1)})
        return embeds

    def generate(
        self,
        prompt: np.ndarray,
        images: list[VisionInput],
        *,
        max_new_tokens: int,
        knobs: SamplingKnobs | None = None,
        stop_tokens: frozenset[int] | None = None,
        deadline: float | None = None,
    ) -> Generation:
        """Greedy decoding of one sequence. ``deadline`` is a ``time.monotonic()`` instant: passing it
        between forward passes raises :class:`DeadlineExceeded` (504)."""
        if max_new_tokens < 1:
            raise BadOptions(f"max_new_tokens must be at least 1, not {max_new_tokens}")
        stops = self.stop_tokens if stop_tokens is None else stop_tokens
        knobs = knobs or SamplingKnobs()
        _check_deadline(deadline)
        embeds = self._embed_ids(prompt)
        image_rows = prompt == self.tokens["image"]
        features = self.encode_images(images)
        if int(image_rows.sum()) != features.shape[0]:
            raise BadInput(
                f"the prompt has {int(image_rows.sum())} image tokens but the images give {features.shape[0]}"
            )
        embeds[0, image_rows] = features
        positions, delta = rope_index(
            prompt,
            [i.grid_thw for i in images],
            image_token_id=self.tokens["image"],
            vision_start_token_id=self.tokens["vision_start"],
            merge_size=self.processor.merge_size,
        )
        shape = self.shape
        past = {
            f"past_{kind}.{i}": np.zeros((1, shape.kv_heads, 0, shape.head_dim), dtype=np.float32)
            for i in range(shape.layers)
            for kind in ("key", "value")
        }
        output: list[int] = []
        position_ids = positions[:, None, :]
        length = len(prompt)
        while True:
            _check_deadline(deadline)
            mask = np.ones((1, length), dtype=np.int64)
            logits, *presents = self._decoder.run(
                None, {"inputs_embeds": embeds, "position_ids": position_ids, "attention_mask": mask, **past}
            )
            past = dict(zip(past, presents, strict=True))
            token = int(np.argmax(adjust_logits(logits[0], prompt, output, knobs)))
            if token in stops:
                return Generation(output, "stop", len(prompt))
            output.append(token)
            if len(output) >= max_new_tokens:
                return Generation(output, "length", len(prompt))
            embeds = self._embed_ids(np.asarray([token], dtype=np.int64))
            position_ids = np.full((3, 1, 1), length + delta, dtype=np.int64)
            length += 1

    def decode(self, token_ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens)


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceeded("the VLM's inference deadline passed before the answer was complete")
