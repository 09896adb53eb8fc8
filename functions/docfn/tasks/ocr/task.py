"""The ``ocr`` task: text lines with polygons and confidences, and page text in reading order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.inputs import Document
from ...packs.locate import FetchReport
from ..base import Task, parse_bool, parse_float
from .engine import OcrEngine, page_text


class OcrTask(Task):
    name = "ocr"

    engine: OcrEngine

    def build(self, pack: FetchReport) -> None:
        self.engine = OcrEngine(pack.pack_dir, pack.manifest, self.settings.onnx_threads)

    def option_names(self) -> list[str]:
        return ["min_confidence", "angle_cls"]

    def parse_options(self, raw: Mapping[str, str]) -> dict[str, Any]:
        super().parse_options(raw)
        return {
            "min_confidence": parse_float("min_confidence", raw.get("min_confidence"), 0.5, 0.0, 1.0),
            "angle_cls": parse_bool("angle_cls", raw.get("angle_cls"), False),
        }

    def predict(self, document: Document, pages: list[int], options: dict[str, Any]) -> dict[str, Any]:
        out_pages = []
        for index in pages:
            page = document.render(index)
            lines = self.engine.recognize_lines(
                page.image, min_confidence=options["min_confidence"], use_angle_cls=options["angle_cls"]
            )
            width, height = page.size
            out_pages.append(
                {
                    "page": index + 1,
                    "width": width,
                    "height": height,
                    "lines": [line.to_dict() for line in lines],
                    "text": page_text(lines),
                }
            )
        return {"pages": out_pages, "text": "\n\n".join(p["text"] for p in out_pages)}

    def render(self, result: dict[str, Any], fmt: str) -> str:
        if fmt == "md":
            return "\n\n".join(f"<!-- page {p['page']} -->\n\n{p['text']}" for p in result["pages"]) + "\n"
        return result["text"] + "\n"
