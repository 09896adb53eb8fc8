"""Options of the ``summarize`` task."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..contract import TaskOptions

DEFAULT_SENTENCES = 5
Engine = Literal["auto", "extractive", "vlm", "llm"]


class SummarizeOptions(TaskOptions):
    sentences: int | None = Field(
        default=None, ge=1, le=100, description=f"Summary length in sentences (default {DEFAULT_SENTENCES})."
    )
    chars: int | None = Field(
        default=None, ge=20, le=50_000, description="Summary length in characters, instead of sentences."
    )
    engine: Engine = Field(
        default="auto",
        description=(
            "extractive: the document's own sentences, ranked (LexRank), no model; llm: the"
            " OpenAI-compatible endpoint of DOCFN_SUMMARIZE_URL; vlm: the VLM pack's language model"
            " (DOCFN_VLM_MODEL_URI); auto: llm if configured, else vlm if configured, else extractive."
            " An abstractive engine that fails falls back to extractive, saying why."
        ),
    )
    language: Literal["auto", "en", "zh"] = Field(
        default="auto", description="Language of the text (auto: detected from its script)."
    )
    max_tokens: int = Field(
        default=400, ge=8, le=4096, description="Abstractive engines: the most tokens one answer may take."
    )

    @model_validator(mode="after")
    def _one_length(self) -> SummarizeOptions:
        if self.sentences is not None and self.chars is not None:
            raise ValueError("give sentences or chars, not both")
        return self

    def sentence_budget(self) -> int:
        return self.sentences or DEFAULT_SENTENCES
