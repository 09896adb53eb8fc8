"""Options of the ``ocr`` task."""

from __future__ import annotations

from pydantic import Field

from ..contract import TaskOptions
from .text_source import TEXT_MODE_DESCRIPTION, TextMode


class OcrOptions(TaskOptions):
    min_confidence: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Drop text lines recognised with less confidence."
    )
    angle_cls: bool = Field(
        default=False,
        description="Classify each line as upright or upside down first. Only packs with a line-angle"
        " classifier (cls) honour it; with any other pack angle_cls=true is refused with 422.",
    )
    mode: TextMode = Field(default="auto", description=TEXT_MODE_DESCRIPTION)
