"""Options of the ``parse`` task."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...core.settings import VLM_BLOCK_TYPES
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

    engine: Literal["pipeline", "vlm"] = Field(
        default="pipeline",
        description=(
            "pipeline: layout, OCR and block recognisers (vlm_blocks may send some blocks to the VLM);"
            " vlm: MinerU2.5's two steps, the VLM's layout then every block read by the VLM (needs a"
            " VLM pack; seconds to minutes a page on CPU: send it as a job, POST /v1/uploads)."
        ),
    )
    vlm_blocks: str | None = Field(
        default=None,
        description=(
            "Block types the pipeline sends to the VLM: a comma list of formula, table, chart (empty:"
            " none). Default: the deployment's DOCFN_PARSE_VLM_BLOCKS (unset: formula,chart when a"
            " VLM pack is configured, DOCFN_VLM_MODEL_URI, else none)."
        ),
        examples=["formula,chart"],
    )

    @field_validator("vlm_blocks")
    @classmethod
    def _known_vlm_blocks(cls, value: str | None) -> str | None:
        if value is None:
            return None
        kinds = [part.strip() for part in value.split(",") if part.strip()]
        unknown = sorted(set(kinds) - set(VLM_BLOCK_TYPES))
        if unknown:
            raise ValueError(f"may list only {list(VLM_BLOCK_TYPES)}; unknown: {unknown}")
        # One spelling per choice, so equal choices share a cache key.
        return ",".join(kind for kind in VLM_BLOCK_TYPES if kind in kinds)

    def vlm_block_types(self) -> set[str]:
        return set((self.vlm_blocks or "").split(",")) - {""}

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
