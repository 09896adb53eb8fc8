"""The ``table`` task: each page (an image of a table) to cells, HTML and Markdown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.documents import PageImage
from ...packs.refs import OWN_PACK
from ...packs.store import LocalPack
from ..contract import Task, page_fields
from ..ocr.engine import OcrEngine
from .options import TableOptions
from .table_recognizers import TableRecognizer, table_recognizer


class TableTask(Task):
    name = "table"
    Options = TableOptions

    recognizers: dict[str, TableRecognizer]

    def load(self, packs: Mapping[str, LocalPack]) -> None:
        pack = packs[OWN_PACK]
        engine = OcrEngine(pack.pack_dir, pack.manifest, self.threads)
        self.recognizers = {"classic": table_recognizer("classic", ocr=engine)}

    def predict_page(self, page: PageImage, options: TableOptions) -> dict[str, Any]:
        table = self.recognizers[options.recognizer](page.image)
        return {**page_fields(page), **table.to_dict()}

    def combine(self, pages: list[dict[str, Any]], options: TableOptions) -> dict[str, Any]:
        first = pages[0] if pages else {"html": "", "markdown": "", "cells": []}
        # The first table at top level: the common case is one table image per request.
        return {
            "html": first["html"],
            "markdown": "\n\n".join(p["markdown"] for p in pages),
            "cells": first["cells"],
            "pages": pages,
        }
