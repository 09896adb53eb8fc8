"""The ``table`` task: each page (an image of a table) to cells, HTML and Markdown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.errors import BadOptions
from ...core.inputs import Document
from ...packs.locate import FetchReport
from ..base import Task
from ..ocr.engine import OcrEngine
from .recognizers import TableRecognizer, table_recognizer


class TableTask(Task):
    name = "table"

    engine: OcrEngine
    recognizers: dict[str, TableRecognizer]

    def build(self, pack: FetchReport) -> None:
        self.engine = OcrEngine(pack.pack_dir, pack.manifest, self.settings.onnx_threads)
        self.recognizers = {"classic": table_recognizer("classic", ocr=self.engine)}

    def option_names(self) -> list[str]:
        return ["recognizer"]

    def parse_options(self, raw: Mapping[str, str]) -> dict[str, Any]:
        super().parse_options(raw)
        name = raw.get("recognizer", "classic")
        if name != "classic":  # the VLM recogniser arrives with the VLM pack
            raise BadOptions(f"table recogniser {name!r} is not available here; available: ['classic']")
        return {"recognizer": name}

    def predict(self, document: Document, pages: list[int], options: dict[str, Any]) -> dict[str, Any]:
        recognizer = self.recognizers[options["recognizer"]]
        out_pages = []
        for index in pages:
            page = document.render(index)
            width, height = page.size
            table = recognizer(page.image)
            out_pages.append({"page": index + 1, "width": width, "height": height, **table.to_dict()})
        first = out_pages[0] if out_pages else {"html": "", "markdown": "", "cells": []}
        # The first table at top level: the common case is one table image per request.
        return {
            "html": first["html"],
            "markdown": "\n\n".join(p["markdown"] for p in out_pages),
            "cells": first["cells"],
            "pages": out_pages,
        }

    def render(self, result: dict[str, Any], fmt: str) -> str:
        if fmt == "md":
            return result["markdown"] + "\n"
        return "\n\n".join(p["html"] for p in result["pages"]) + "\n"
