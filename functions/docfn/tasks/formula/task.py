"""The ``formula`` task: each page of the input is one formula (a crop) -> its LaTeX.

Pack: the VLM (``DOCFN_VLM_MODEL_URI``, default ``vlm-mineru25-int8``), exported from MinerU2.5's
weights with ``docfn models export-vlm``. A formula inside a page is read by ``parse`` (its
``vlm_blocks`` option), which finds it first.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from ...core.documents import PageImage
from ..contract import page_fields
from ..vlm.block_task import VlmBlockTask
from .options import FormulaOptions


def display_math(latex: str) -> str:
    return f"$$\n{latex}\n$$" if latex else ""


class FormulaTask(VlmBlockTask):
    name = "formula"
    Options = FormulaOptions

    def predict_page(self, page: PageImage, options: FormulaOptions) -> dict[str, Any]:
        formula = self.reader_for(options).formula(Image.fromarray(page.image))
        return {**page_fields(page), "latex": formula.latex, "complete": formula.complete}

    def combine(self, pages: list[dict[str, Any]], options: FormulaOptions) -> dict[str, Any]:
        first = pages[0] if pages else {"latex": "", "complete": True}
        return {
            "latex": first["latex"],
            "complete": first["complete"],
            "markdown": "\n\n".join(md for md in (display_math(p["latex"]) for p in pages) if md),
            "pages": pages,
        }
