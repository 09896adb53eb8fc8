"""Options of the ``chart`` task."""

from __future__ import annotations

from ..vlm.block_task import VlmBlockOptions


class ChartOptions(VlmBlockOptions):
    pass
