"""Options of the ``table`` task."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..contract import TaskOptions


class TableOptions(TaskOptions):
    # The VLM recogniser arrives with the VLM pack; until then "classic" is the only one.
    recognizer: Literal["classic"] = Field(
        default="classic", description="Table recogniser: classic = ruling lines + OCR alignment."
    )
