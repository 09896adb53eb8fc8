"""Options of the ``table`` task."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

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
