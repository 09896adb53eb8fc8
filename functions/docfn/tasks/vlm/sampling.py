"""MinerU's decoding knobs as vLLM applies them to one sequence's next-token logits.

- ``repetition_penalty`` (vLLM/transformers): every token seen in the prompt or the output has its
  logit divided by the penalty if positive, multiplied if negative.
- ``frequency_penalty`` / ``presence_penalty`` (OpenAI semantics, vLLM): subtract ``frequency * count``
  and ``presence * (count > 0)`` for tokens in the output so far.
- ``no_repeat_ngram_size`` (mineru-vl-utils' vLLM logits processor, after transformers'
  ``NoRepeatNGramLogitsProcessor``, over the output tokens): a token that would complete an n-gram
  already generated is banned.

The order is vLLM's: repetition, then frequency and presence, then the n-gram ban; greedy picks the
largest logit (ties to the lowest id, as ``argmax``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SamplingKnobs:
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    no_repeat_ngram_size: int = 0


def banned_by_ngrams(output: list[int], size: int) -> set[int]:
    """Tokens that would repeat an n-gram of ``size`` already in ``output``."""
    if size <= 0 or len(output) + 1 < size:
        return set()
    if size == 1:
        return set(output)
    prefix = tuple(output[len(output) - size + 1 :])
    return {
        output[i + size - 1]
        for i in range(len(output) - size + 1)
        if tuple(output[i : i + size - 1]) == prefix
    }


def adjust_logits(
    logits: np.ndarray, prompt: np.ndarray, output: list[int], knobs: SamplingKnobs
) -> np.ndarray:
    """The next-token logits [vocab] after the knobs (a new array; ``logits`` is left as is)."""
    adjusted = logits.astype(np.float32, copy=True)
    if knobs.repetition_penalty != 1.0:
        seen = np.unique(np.concatenate([prompt.astype(np.int64), np.asarray(output, dtype=np.int64)]))
        values = adjusted[seen]
        adjusted[seen] = np.where(
            values > 0, values / knobs.repetition_penalty, values * knobs.repetition_penalty
        )
    if output and (knobs.frequency_penalty or knobs.presence_penalty):
        counts = Counter(output)
        ids = np.fromiter(counts.keys(), dtype=np.int64)
        freq = np.fromiter(counts.values(), dtype=np.float32)
        adjusted[ids] -= knobs.frequency_penalty * freq + knobs.presence_penalty
    banned = banned_by_ngrams(output, knobs.no_repeat_ngram_size)
    if banned:
        adjusted[list(banned)] = -np.inf
    return adjusted
