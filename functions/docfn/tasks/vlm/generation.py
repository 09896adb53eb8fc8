"""What a VLM sequence is asked (:class:`GenerationRequest`) and what it answers (:class:`Generation`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .preprocess import VisionInput
from .sampling import SamplingKnobs
from .text_stream import TextSink


@dataclass(frozen=True)
class Generation:
    token_ids: list[int]
    # "stop" (a stop token, not included, or a stop string), "length" (max_new_tokens reached),
    # "deadline" (the request's own deadline passed while it decoded) or "cancelled" (its caller
    # left); VlmEngine raises DeadlineExceeded or ClientGone for the last two.
    finish_reason: str
    prompt_tokens: int
    text: str = ""  # the decoded answer (the model's generate_batch returns token ids only)
    decode_steps: int = 0  # decoder passes this sequence took part in, its prefill included


@dataclass(frozen=True)
class GenerationRequest:
    """One sequence to decode: its prompt token ids, its images in prompt order, its knobs, its
    stop tokens (None: the pack's) and its own deadline (a ``time.monotonic()`` instant: past it, the
    sequence leaves the batch with finish reason "deadline" and the others go on).

    ``stop_strings`` end decoding once the text holds one (the text ends before it); ``on_text``
    receives the answer's text piece by piece as it is decoded (a streamed answer); ``on_token``
    each token id as it is chosen; ``cancelled``, once set, makes the sequence leave the batch at
    the next step (its caller is gone). The callbacks run in the engine's worker thread: keep them
    short (hand the piece to a queue)."""

    prompt: np.ndarray
    images: list[VisionInput]
    max_new_tokens: int
    knobs: SamplingKnobs = field(default_factory=SamplingKnobs)
    stop_tokens: frozenset[int] | None = None
    deadline: float | None = None
    skip_special_tokens: bool = True
    stop_strings: tuple[str, ...] = ()
    on_text: TextSink | None = None
    on_token: Callable[[int], None] | None = None
    cancelled: threading.Event | None = None
