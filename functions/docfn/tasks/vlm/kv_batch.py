"""The decoder's KV cache for a batch of sequences, whose rows can leave and whose batch can grow.

The decoder graph takes, per layer, ``past_key``/``past_value`` [B, kv_heads, T, head_dim] and an
``attention_mask`` [B, T + S] (1: attend, 0: padding); every row of a batch shares T. A sequence
shorter than the batch's T is left-padded: its padded positions are masked, and the graph's mask
bias (``finfo.min``) makes their softmax weight exactly zero, so a row's answer does not depend on
how much padding it carries (token-exact with the sequence decoded alone, in fp32).

Joining two batches pads the shorter cache on the left to the longer one's T; a finished row leaves
by keeping the others' rows. Both go through numpy; from step to step the cache otherwise stays in
ONNX Runtime's own tensors (no copies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

# A cache tensor as the decoder returned it (OrtValue) or as padded/sliced here (numpy).
Tensor = Any


def _array(value: Tensor) -> np.ndarray:
    return value.numpy() if isinstance(value, ort.OrtValue) else value


@dataclass
class KvBatch:
    """Per layer key and value tensors (``past`` in the graph's input order) and the mask over them."""

    past: list[Tensor]
    mask: np.ndarray  # [B, T] int64

    @property
    def rows(self) -> int:
        return int(self.mask.shape[0])

    @property
    def length(self) -> int:
        return int(self.mask.shape[1])

    def keep(self, rows: list[int]) -> KvBatch:
        """The cache of ``rows`` only (in that order)."""
        if rows == list(range(self.rows)):
            return self
        return KvBatch([_array(value)[rows] for value in self.past], self.mask[rows])

    def left_padded(self, length: int) -> KvBatch:
        """The same rows over ``length`` positions: the new ones on the left, masked."""
        pad = length - self.length
        if pad <= 0:
            return self
        past = [np.pad(_array(value), ((0, 0), (0, 0), (pad, 0), (0, 0))) for value in self.past]
        return KvBatch(past, np.pad(self.mask, ((0, 0), (pad, 0))))

    @staticmethod
    def joined(first: KvBatch, second: KvBatch) -> KvBatch:
        """``first``'s rows then ``second``'s, over the longer of their lengths."""
        length = max(first.length, second.length)
        a, b = first.left_padded(length), second.left_padded(length)
        past = [np.concatenate([_array(x), _array(y)]) for x, y in zip(a.past, b.past, strict=True)]
        return KvBatch(past, np.concatenate([a.mask, b.mask]))
