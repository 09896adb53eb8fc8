"""Options of the ``vlm`` task (one prompt per page; the chat API takes MinerU's full request)."""

from __future__ import annotations

from pydantic import Field

from ..contract import TaskOptions

# MinerU2.5's block prompts (mineru-vl-utils' DEFAULT_PROMPTS); any other text is sent as given.
TEXT_RECOGNITION = "\nText Recognition:"


class VlmOptions(TaskOptions):
    prompt: str = Field(
        default=TEXT_RECOGNITION,
        min_length=1,
        max_length=4000,
        description="What to ask about each page, after the page image (MinerU2.5: \\nText Recognition:,"
        " \\nLayout Detection:, \\nTable Recognition:, \\nFormula Recognition:, \\nImage Analysis:).",
    )
    max_tokens: int = Field(
        default=1024, ge=1, le=16384, description="New tokens of each page's answer, at most."
    )
