"""The ``chart`` task: each page of the input is one picture (a crop) -> MinerU2.5's image analysis:
its kind (``chart``, ``natural_image``, ``flowchart``, ...), sub-kind (``bar``, ``line``, ...), a
caption, and its content (a chart's data as a Markdown table, a flowchart as Mermaid).

Pack: the VLM (``DOCFN_VLM_MODEL_URI``, default ``vlm-mineru25-int8``).
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from ...core.documents import PageImage
from ..contract import page_fields
from ..vlm.block_task import VlmBlockTask
from ..vlm.image_analysis import ImageAnalysis
from .options import ChartOptions


def analysis_markdown(analysis: dict[str, Any]) -> str:
    """The caption, then the content (a data table or a Mermaid block already in Markdown)."""
    return "\n\n".join(part for part in (analysis["caption"], analysis["content"]) if part)


class ChartTask(VlmBlockTask):
    name = "chart"
    Options = ChartOptions

    def predict_page(self, page: PageImage, options: ChartOptions) -> dict[str, Any]:
        analysis: ImageAnalysis = self.reader_for(options).analyse(Image.fromarray(page.image))
        return {**page_fields(page), **analysis.to_dict()}

    def combine(self, pages: list[dict[str, Any]], options: ChartOptions) -> dict[str, Any]:
        first = {k: v for k, v in pages[0].items() if k not in {"page", "width", "height"}} if pages else {}
        markdown = "\n\n".join(md for md in (analysis_markdown(p) for p in pages) if md)
        return {**first, "markdown": markdown, "pages": pages}
