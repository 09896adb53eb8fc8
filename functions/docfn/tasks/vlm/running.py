"""The running batch of iteration-level scheduling: sequences that share every decoder pass, which
new sequences join after their own prefill and which a finished sequence leaves at once.

Each step feeds every running sequence its last token; each sequence then picks its next one (its
knobs, greedy), or leaves: a stop token or stop string ("stop"), ``max_new_tokens`` ("length"), its
deadline ("deadline") or its caller gone ("cancelled"). Joining pads the shorter KV cache on the
left (:class:`~docfn.tasks.vlm.kv_batch.KvBatch`), which leaves each row's answer unchanged, so a
sequence's tokens are those it gets decoded alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ...core import metrics
from .generation import Generation, GenerationRequest
from .kv_batch import KvBatch
from .sampling import adjust_logits
from .text_stream import TextStream


class VlmModel(Protocol):
    """What the running batch asks of the model (docfn.tasks.vlm.model.VlmModel, which imports this
    module to decode on it: a protocol here, not an import back)."""

    stop_tokens: frozenset[int]

    def prefill(self, requests: list[GenerationRequest]) -> tuple[np.ndarray, KvBatch, list[int]]: ...

    def step(self, kv: KvBatch, tokens: list[int], positions: list[int]) -> tuple[np.ndarray, KvBatch]: ...

    def decode(self, token_ids: list[int], skip_special_tokens: bool = True) -> str: ...


@dataclass(eq=False)
class Sequence:
    request: GenerationRequest
    stop_tokens: frozenset[int]
    text: TextStream | None = None  # with stop strings or a text sink: the text as it is decoded
    delta: int = 0  # M-RoPE's shift of generated positions (rope_index)
    output: list[int] = field(default_factory=list)
    steps: int = 0
    finish_reason: str | None = None

    @classmethod
    def of(cls, request: GenerationRequest, model: VlmModel) -> Sequence:
        stops = model.stop_tokens if request.stop_tokens is None else request.stop_tokens
        text = None
        if request.stop_strings or request.on_text is not None:
            skip = request.skip_special_tokens
            text = TextStream(lambda ids: model.decode(ids, skip), request.stop_strings, request.on_text)
        return cls(request, stops, text)

    @property
    def next_position(self) -> int:
        """The position of the token fed next (the last one chosen): prompt + output - 1, shifted."""
        return len(self.request.prompt) + len(self.output) - 1 + self.delta

    def gone(self, now: float) -> str | None:
        """Why the sequence must leave before its next step, if it must."""
        request = self.request
        if request.deadline is not None and now >= request.deadline:
            return "deadline"
        if request.cancelled is not None and request.cancelled.is_set():
            return "cancelled"
        return None

    def advance(self, logits: np.ndarray, now: float) -> bool:
        """Take one pass's logits [vocab]: pick the next token or finish. True while running."""
        self.steps += 1
        self.finish_reason = self.gone(now)
        if self.finish_reason is not None:
            return False
        request = self.request
        token = int(np.argmax(adjust_logits(logits, request.prompt, self.output, request.knobs)))
        if token in self.stop_tokens:
            self.finish_reason = "stop"
            return False
        self.output.append(token)
        if request.on_token is not None:
            request.on_token(token)
        if self.text is not None and self.text.push(token):
            self.finish_reason = "stop"
        elif len(self.output) >= request.max_new_tokens:
            self.finish_reason = "length"
        return self.finish_reason is None

    def generation(self, text: str = "") -> Generation:
        assert self.finish_reason is not None
        return Generation(self.output, self.finish_reason, len(self.request.prompt), text, self.steps)


class RunningBatch:
    """The sequences decoding together, in the KV cache's row order."""

    def __init__(self, model: VlmModel) -> None:
        self.model = model
        self.sequences: list[Sequence] = []
        self._kv: KvBatch | None = None

    def __len__(self) -> int:
        return len(self.sequences)

    def admit(self, joining: list[Sequence]) -> list[Sequence]:
        """Prefill ``joining`` together (one vision pass, one left-padded prompt pass), pick their
        first tokens and add those still running to the batch. Returns those already finished."""
        if not joining:
            return []
        metrics.VLM_BATCH_SIZE.observe(len(joining))
        logits, kv, deltas = self.model.prefill([sequence.request for sequence in joining])
        for sequence, delta in zip(joining, deltas, strict=True):
            sequence.delta = delta
        finished, kv = self._advance(joining, logits, kv)
        running = [sequence for sequence in joining if sequence.finish_reason is None]
        if running:
            self._kv = kv if self._kv is None else KvBatch.joined(self._kv, kv)
            self.sequences += running
        metrics.VLM_RUNNING.set(len(self.sequences))
        return finished

    def step(self) -> list[Sequence]:
        """One decoder pass for every running sequence. Returns those that finished in it."""
        assert self._kv is not None and self.sequences
        tokens = [sequence.output[-1] for sequence in self.sequences]
        positions = [sequence.next_position for sequence in self.sequences]
        logits, kv = self.model.step(self._kv, tokens, positions)
        finished, self._kv = self._advance(self.sequences, logits, kv)
        self.sequences = [sequence for sequence in self.sequences if sequence.finish_reason is None]
        if not self.sequences:
            self._kv = None
        metrics.VLM_RUNNING.set(len(self.sequences))
        return finished

    def leave(self, now: float) -> list[Sequence]:
        """Sequences past their deadline or cancelled leave before the next pass is spent on them."""
        keep = []
        for row, sequence in enumerate(self.sequences):
            sequence.finish_reason = sequence.gone(now)
            if sequence.finish_reason is None:
                keep.append(row)
        if len(keep) == len(self.sequences):
            return []
        gone = [sequence for sequence in self.sequences if sequence.finish_reason is not None]
        for sequence in gone:
            metrics.VLM_FINISHED.labels(sequence.finish_reason).inc()
        self.sequences = [self.sequences[row] for row in keep]
        self._kv = self._kv.keep(keep) if keep and self._kv is not None else None
        metrics.VLM_RUNNING.set(len(self.sequences))
        return gone

    @staticmethod
    def _advance(
        sequences: list[Sequence], logits: np.ndarray, kv: KvBatch
    ) -> tuple[list[Sequence], KvBatch]:
        metrics.VLM_DECODE_STEPS.inc(len(sequences))
        now = time.monotonic()
        keep = [row for row, sequence in enumerate(sequences) if sequence.advance(logits[row], now)]
        finished = [sequence for sequence in sequences if sequence.finish_reason is not None]
        for sequence in finished:
            metrics.VLM_FINISHED.labels(sequence.finish_reason).inc()
        return finished, kv.keep(keep) if keep else kv
