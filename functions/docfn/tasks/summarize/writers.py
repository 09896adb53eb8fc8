"""The abstractive engines' writers: a prompt in, text out, within a token budget and a deadline.

``llm``: an OpenAI-compatible endpoint, bound by the wiring (``docfn.cloud.llm_endpoint``): the task
only sees a :class:`Writer`. ``vlm``: the VLM pack's language model through docfn's own ONNX runtime,
the prompt without images (:func:`vlm_write` is the one place that calls it).

A writer that cannot answer raises :class:`WriterFailed`; the task then falls back to extractive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ...core.errors import DocfnError
from ..vlm.blocks import VlmCall, VlmGenerator
from ..vlm.sampling import SamplingKnobs

# The name the wiring binds the LLM endpoint's writer under (Task.bind).
LLM_WRITER = "llm_writer"
# A writer: (prompt, max new tokens, deadline as a time.monotonic() instant or None) -> text.
Writer = Callable[[str, int, float | None], str]
# Several prompts written together (the map step's parts): (prompts, max new tokens, deadline) ->
# texts in order. The VLM decodes them in one batch rather than one after another.
WriteMany = Callable[[list[str], int, float | None], list[str]]


class NamedWriter(Protocol):
    """A writer bound from outside the task (the LLM endpoint): ``name`` is what results report, and
    ``identity`` what besides the options shapes its answers (enters the cache key)."""

    name: str
    identity: list[str | None]

    def __call__(self, prompt: str, max_tokens: int, deadline: float | None) -> str: ...


class WriterFailed(Exception):
    """The engine gave no answer; the message is the reason reported with the fallback."""


def vlm_write(vlm: VlmGenerator, prompt: str, max_tokens: int, deadline: float | None) -> str:
    """The VLM pack's language model on a text-only prompt, through the function's batching engine."""
    try:
        generation = vlm.generate(None, prompt, SamplingKnobs(), max_tokens, deadline)
    except DocfnError as exc:  # the deadline passed while decoding, or the prompt was refused
        raise WriterFailed(f"the VLM did not answer: {exc.message}") from None
    return generation.text.strip()


def vlm_write_many(
    vlm: VlmGenerator, prompts: list[str], max_tokens: int, deadline: float | None
) -> list[str]:
    """Several text-only prompts submitted to the VLM at once, so that they decode together."""
    calls = [VlmCall(None, prompt, SamplingKnobs(), max_tokens) for prompt in prompts]
    try:
        return [future.result().text.strip() for future in vlm.submit_many(calls, deadline)]
    except DocfnError as exc:
        raise WriterFailed(f"the VLM did not answer: {exc.message}") from None
