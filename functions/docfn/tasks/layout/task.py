"""The ``layout`` task: per page, regions {type, bbox, score, order} in reading order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.inputs import Document
from ...packs.locate import FetchReport
from ..base import Task, parse_float
from .analyzer import LayoutAnalyzer


class LayoutTask(Task):
    name = "layout"

    analyzer: LayoutAnalyzer

    def build(self, pack: FetchReport) -> None:
        self.analyzer = LayoutAnalyzer(pack.pack_dir, pack.manifest, self.settings.onnx_threads)

    def option_names(self) -> list[str]:
        return ["min_score"]

    def parse_options(self, raw: Mapping[str, str]) -> dict[str, Any]:
        super().parse_options(raw)
        return {"min_score": parse_float("min_score", raw.get("min_score"), 0.5, 0.05, 1.0)}

    def predict(self, document: Document, pages: list[int], options: dict[str, Any]) -> dict[str, Any]:
        out_pages = []
        for index in pages:
            page = document.render(index)
            regions = self.analyzer(page.image, options["min_score"])
            width, height = page.size
            out_pages.append(
                {
                    "page": index + 1,
                    "width": width,
                    "height": height,
                    "regions": [r.to_dict() for r in regions],
                }
            )
        return {"pages": out_pages}

    def render(self, result: dict[str, Any], fmt: str) -> str:
        lines = []
        for page in result["pages"]:
            lines.append(f"page {page['page']} ({page['width']}x{page['height']})")
            for r in page["regions"]:
                x0, y0, x1, y1 = (round(v) for v in r["bbox"])
                lines.append(f"  {r['order']:>3} {r['type']:<15} {r['score']:.2f} [{x0}, {y0}, {x1}, {y1}]")
        return "\n".join(lines) + "\n"
