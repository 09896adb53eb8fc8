"""Options of the ``layout`` task."""

from __future__ import annotations

from pydantic import Field

from ..contract import TaskOptions


class LayoutOptions(TaskOptions):
    min_score: float = Field(
        default=0.5, ge=0.05, le=1.0, description="Drop regions detected with a lower score."
    )
