"""Options of the ``formula`` task."""

from __future__ import annotations

from ..vlm.block_task import VlmBlockOptions


class FormulaOptions(VlmBlockOptions):
    pass
