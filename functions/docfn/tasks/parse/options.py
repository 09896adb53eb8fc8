"""Options of the ``parse`` task."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..contract import TaskOptions
from ..ocr.text_source import TEXT_MODE_DESCRIPTION, TextMode
from .formula_recognizers import formula_recognizer_names


class ParseOptions(TaskOptions):
    images: Literal["none", "base64", "embed"] = Field(
        default="none",
        description=(
            "Crops of figures, tables and formulas. none: left out, and the Markdown links to none;"
            " base64: in the result's images (by img_path), which the Markdown links to;"
            " embed: inside the Markdown as data: URIs."
        ),
    )
    ocr_mode: Literal["page", "region"] = Field(
        default="page",
        description="page: detect text once on the page; region: OCR each layout region on its own.",
    )
    mode: TextMode = Field(default="auto", description=TEXT_MODE_DESCRIPTION)
    min_score: float = Field(default=0.5, ge=0.05, le=1.0, description="Drop layout regions scored lower.")
    formula: str = Field(
        default="none", description="Formula recogniser (none: formulas keep their OCR text)."
    )

    chunks: bool = Field(
        default=False,
        description="Also return retrieval chunks of the Markdown: section-aware, with pages, boxes and"
        " heading path (see chunk_tokens, chunk_overlap).",
    )
    chunk_tokens: int = Field(
        default=512, ge=16, le=16_384, description="Chunk size in tokens (words, CJK characters)."
    )
    chunk_overlap: int = Field(
        default=64, ge=0, le=4096, description="Tokens a chunk repeats from the previous one."
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ParseOptions:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError("chunk_overlap must be smaller than chunk_tokens")
        return self

    @field_validator("formula")
    @classmethod
    def _known_formula_recognizer(cls, value: str) -> str:
        if value not in formula_recognizer_names():
            raise ValueError(f"must be one of {formula_recognizer_names()}")
        return value
