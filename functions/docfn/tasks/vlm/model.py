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
import onnxruntime as ort
from tokenizers import Tokenizer

from ...core.errors import BadInput, BadOptions, DeadlineExceeded
from ...core.onnx_sessions import get_session
from ...packs.manifest import Manifest
from .generation import Generation, GenerationRequest
from .kv_batch import KvBatch
from .preprocess import ProcessorConfig, VisionInput, vision_positions
from .rope_index import rope_index
from .running import RunningBatch, Sequence
from .sampling import SamplingKnobs

__all__ = ["DEFAULT_SYSTEM", "Generation", "GenerationRequest", "TextShape", "VlmModel", "vision_pass"]

DEFAULT_SYSTEM = "You are a helpful assistant."
# Patches (before the 2x2 merge) that one vision pass takes when it holds several images: a 448x112
# block crop is 256, so a few block crops share a pass; a page view (1036x1036: 5476) runs alone, and
# a pass of one image takes the graph's flash attention (no mask, no score matrix). Several images
# share a pass through a dense, masked attention; at MinerU2.5's width (1280, MLP 5120) a patch's
# linear layers cost ~7x its attention over 1024 patches, so sharing a pass that large costs little
# and saves a pass's fixed overhead per image.
VISION_PASS_PATCHES = 1024


@dataclass(frozen=True)
class TextShape:
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    hidden: int
    vocab: int


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
        self._past_names = [f"past_{kind}.{i}" for i in range(self.shape.layers) for kind in ("key", "value")]
        self._decoder_outputs = [output.name for output in self._decoder.get_outputs()]

    @classmethod
    def from_pack(cls, pack_dir: Path, manifest: Manifest, threads: int = 0) -> VlmModel:
        return cls({f.role: pack_dir / f.path for f in manifest.files}, manifest.config, threads)

    def encode_images(self, images: list[VisionInput]) -> np.ndarray:
        """Merged image features [sum of merged tokens, hidden], in order. Consecutive images share a
        vision pass while their patches stay within ``VISION_PASS_PATCHES``: the graph's attention
        spans every patch of a pass (masked to each image), so its cost grows with the square of the
        pass, and only small crops gain more from sharing the pass than they pay for it."""
        if not images:
            return np.zeros((0, self.shape.hidden), dtype=np.float32)
        groups: list[list[VisionInput]] = [[]]
        for image in images:
            patches = sum(i.pixel_values.shape[0] for i in groups[-1]) + image.pixel_values.shape[0]
            if groups[-1] and patches > VISION_PASS_PATCHES:
                groups.append([])
            groups[-1].append(image)
        return np.concatenate([vision_pass(self._vision, group) for group in groups])

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
        """[B, S] token ids -> [B, S, hidden]."""
        (embeds,) = self._embed.run(None, {"input_ids": ids})
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
        """Greedy decoding of one sequence (a batch of one, see :meth:`generate_batch`)."""
        request = GenerationRequest(prompt, images, max_new_tokens, knobs or SamplingKnobs(), stop_tokens)
        return self.generate_batch([request], deadline=deadline)[0]

    def _prefill_inputs(
        self, requests: list[GenerationRequest]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
        """Left-padded prompt embeddings (image rows replaced by the image features, all images in one
        vision pass), M-RoPE positions [3, B, L], the attention mask, and each sequence's rope delta."""
        features = self.encode_images([image for r in requests for image in r.images])
        width = max(len(r.prompt) for r in requests)
        embeds = np.zeros((len(requests), width, self.shape.hidden), dtype=np.float32)
        positions = np.ones((3, len(requests), width), dtype=np.int64)  # padding: masked, any value
        mask = np.zeros((len(requests), width), dtype=np.int64)
        deltas, used = [], 0
        for row, request in enumerate(requests):
            image_rows = request.prompt == self.tokens["image"]
            wanted = int(image_rows.sum())
            given = sum(image.merged_tokens for image in request.images)
            if wanted != given:
                raise BadInput(f"the prompt has {wanted} image tokens but its images give {given}")
            prompt_embeds = self._embed_ids(request.prompt.reshape(1, -1))[0]
            prompt_embeds[image_rows] = features[used : used + given]
            used += given
            ids, delta = rope_index(
                request.prompt,
                [image.grid_thw for image in request.images],
                image_token_id=self.tokens["image"],
                vision_start_token_id=self.tokens["vision_start"],
                merge_size=self.processor.merge_size,
            )
            pad = width - len(request.prompt)
            embeds[row, pad:], positions[:, row, pad:], mask[row, pad:] = prompt_embeds, ids, 1
            deltas.append(delta)
        return embeds, positions, mask, deltas

    def generate_batch(
        self, requests: list[GenerationRequest], *, deadline: float | None = None
    ) -> list[Generation]:
        """Greedy decoding of several sequences sharing every forward pass: one vision pass for all
        their images, one left-padded prefill, then one decoder step per token for the sequences still
        running (a finished one leaves the batch and its KV cache). ``deadline`` is a
        ``time.monotonic()`` instant: passing it between forward passes raises
        :class:`DeadlineExceeded` (504) for the batch. (The engine runs the same batch, with requests
        joining it as they come: :class:`~docfn.tasks.vlm.running.RunningBatch`.)"""
        for request in requests:
            if request.max_new_tokens < 1:
                raise BadOptions(f"max_new_tokens must be at least 1, not {request.max_new_tokens}")
        _check_deadline(deadline)
        sequences = [Sequence.of(request, self) for request in requests]
        batch = RunningBatch(self)
        batch.admit(sequences)
        while batch:
            _check_deadline(deadline)
            batch.step()
        return [sequence.generation() for sequence in sequences]

    def prefill(self, requests: list[GenerationRequest]) -> tuple[np.ndarray, KvBatch, list[int]]:
        """The prompts' pass: the last position's logits [B, vocab], their KV cache (left-padded to
        the longest prompt) and each sequence's M-RoPE delta."""
        embeds, positions, mask, deltas = self._prefill_inputs(requests)
        shape = self.shape
        empty = np.zeros((len(requests), shape.kv_heads, 0, shape.head_dim), dtype=np.float32)
        feed = {"inputs_embeds": embeds, "position_ids": positions, "attention_mask": mask}
        logits, presents = self._decode_step({**feed, **dict.fromkeys(self._past_names, empty)})
        return logits, KvBatch(presents, mask), deltas

    def step(self, kv: KvBatch, tokens: list[int], positions: list[int]) -> tuple[np.ndarray, KvBatch]:
        """One token per row: its logits [B, vocab] and the cache grown by it. ``positions``: each
        token's text position (M-RoPE gives a text token the same position on its three axes)."""
        mask = np.concatenate([kv.mask, np.ones((kv.rows, 1), dtype=np.int64)], axis=1)
        embeds = self._embed_ids(np.asarray(tokens, dtype=np.int64).reshape(-1, 1))
        position_ids = np.repeat(np.asarray(positions, dtype=np.int64)[None, :, None], 3, axis=0)
        feed = {"inputs_embeds": embeds, "position_ids": position_ids, "attention_mask": mask}
        logits, presents = self._decode_step({**feed, **dict(zip(self._past_names, kv.past, strict=True))})
        return logits, KvBatch(presents, mask)

    def _decode_step(self, feed: dict[str, Any]) -> tuple[np.ndarray, list[ort.OrtValue]]:
        """One decoder pass: the logits as numpy, the KV cache as ONNX Runtime values (no copies)."""
        values = {
            name: value if isinstance(value, ort.OrtValue) else ort.OrtValue.ortvalue_from_numpy(value)
            for name, value in feed.items()
        }
        logits, *presents = self._decoder.run_with_ort_values(self._decoder_outputs, values)
        return logits.numpy(), presents

    def decode(self, token_ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens)


def vision_pass(session: ort.InferenceSession, images: list[VisionInput]) -> np.ndarray:
    """One run of a vision graph over ``images`` (attention kept inside each): merged features."""
    positions = np.concatenate([vision_positions(i.grid_thw, i.merge_size) for i in images])
    segments = np.concatenate(
        [np.full(i.pixel_values.shape[0], n, dtype=np.int64) for n, i in enumerate(images)]
    )
    pixels = np.concatenate([i.pixel_values for i in images])
    (features,) = session.run(None, {"pixel_values": pixels, "positions": positions, "segment_ids": segments})
    return features


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceeded("the VLM's inference deadline passed before the answer was complete")
