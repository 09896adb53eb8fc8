"""Options of the ``table`` task."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..contract import TaskOptions


class TableOptions(TaskOptions):
    recognizer: Literal["auto", "classic", "slanet", "vlm"] = Field(
        default="auto",
        description=(
            "Table recogniser. auto: ruled tables from their rules, the rest with SLANet (measured:"
            " docs/benchmarks/table.md); classic: ruling lines + OCR alignment; slanet: SLANet-plus;"
            " vlm: MinerU2.5's table prompt (needs a VLM pack, DOCFN_VLM_MODEL_URI)."
        ),
    )
    prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=4000,
        description="With recognizer=vlm: ask this instead of MinerU2.5's table prompt (a multipart"
        " instruction field fills it); an answer that is not OTSL is kept whole in one cell.",
    )

    @model_validator(mode="after")
    def _prompt_needs_the_vlm(self) -> TableOptions:
        if self.prompt is not None and self.recognizer != "vlm":
            raise ValueError(f"prompt needs recognizer=vlm; recognizer {self.recognizer} takes no prompt")
        return self
