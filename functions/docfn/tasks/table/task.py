"""The ``table`` task: the tables on each page (a page, or an image of one table) to cells, HTML and
Markdown.

Packs: the OCR pack is the task's own (``DOCFN_MODEL_URI``); the layout pack that finds tables on a
page (``DOCFN_LAYOUT_MODEL_URI``, default the ``layout`` task's) and SLANet-plus
(``DOCFN_TABLE_STRUCTURE_MODEL_URI``, default ``table-slanet-plus``) are secondary. The VLM pack
(``DOCFN_VLM_MODEL_URI``) is optional: loaded by the first ``recognizer=vlm`` request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.documents import PageImage
from ...core.settings import Settings
from ...packs.refs import OWN_PACK
from ...packs.store import LocalPack
from ..contract import Task, page_fields
from ..instruction import InstructionNotApplied, with_prompt
from ..layout.analyzer import LayoutAnalyzer
from ..ocr.engine import OcrEngine
from ..vlm import loading
from ..vlm.batching import Batching
from ..vlm.blocks import VLM_PACK
from ..vlm.reader import BlockReader
from .options import TableOptions
from .regions import padded, table_boxes
from .slanet import STRUCTURE_PACK, SlanetStructure
from .structure import Table
from .table_recognizers import TableRecognizer, table_recognizer
from .vlm_recognizer import VlmTableRecognizer

LAYOUT_PACK = "layout"
# Layout boxes hug the ink; recognisers see the table with this much page around it.
MARGIN_PX = 8


class TableTask(Task):
    name = "table"
    Options = TableOptions
    pack_roles = (OWN_PACK, LAYOUT_PACK, STRUCTURE_PACK)
    optional_pack_roles = (VLM_PACK,)

    recognizers: dict[str, TableRecognizer]
    layout: LayoutAnalyzer

    def __init__(self, threads: int = 0, vlm_max_tokens: int = 4096) -> None:
        super().__init__(threads)
        self.vlm_max_tokens = vlm_max_tokens
        self.vlm_batching = Batching()

    @classmethod
    def from_settings(cls, settings: Settings) -> TableTask:
        task = cls(settings.onnx_threads, settings.vlm_max_tokens)
        task.vlm_batching = Batching.from_settings(settings)
        return task

    def optional_roles_for(self, options: TableOptions) -> tuple[str, ...]:
        return (VLM_PACK,) if options.recognizer == "vlm" else ()

    def load_optional(self, role: str, pack: LocalPack) -> None:
        reader = BlockReader(loading.load_engine(pack, self.threads, self.vlm_batching), self.vlm_max_tokens)
        self.recognizers["vlm"] = VlmTableRecognizer(reader)

    def load(self, packs: Mapping[str, LocalPack]) -> None:
        ocr_pack, layout_pack, structure_pack = packs[OWN_PACK], packs[LAYOUT_PACK], packs[STRUCTURE_PACK]
        ocr = OcrEngine(ocr_pack.pack_dir, ocr_pack.manifest, self.threads)
        structure = SlanetStructure(structure_pack.pack_dir, structure_pack.manifest, self.threads)
        self.layout = LayoutAnalyzer(layout_pack.pack_dir, layout_pack.manifest, self.threads)
        self._ocr = ocr
        self.recognizers = {
            "auto": table_recognizer("auto", ocr=ocr, structure=structure),
            "classic": table_recognizer("classic", ocr=ocr),
            "slanet": table_recognizer("slanet", ocr=ocr, structure=structure),
        }

    def warm_up(self) -> None:
        self.layout.warm_up()
        self._ocr.warm_up()

    def apply_instruction(self, options: TableOptions, instruction: str) -> TableOptions:
        if options.recognizer != "vlm":
            raise InstructionNotApplied(
                f"not applied: table read its tables with recognizer {options.recognizer}, which takes"
                " no prompt; recognizer=vlm asks the VLM with the instruction"
            )
        return with_prompt(options, instruction, "the prompt each table is read with")

    def recognizer_for(self, options: TableOptions) -> TableRecognizer:
        if options.prompt is None:
            return self.recognizers[options.recognizer]
        vlm = self.recognizers["vlm"]
        assert isinstance(vlm, VlmTableRecognizer)  # prompt comes with recognizer=vlm only
        reader = vlm.reader
        return VlmTableRecognizer(BlockReader(reader.generator, reader.max_tokens, options.prompt))

    def predict_page(self, page: PageImage, options: TableOptions) -> dict[str, Any]:
        width, height = page.size
        boxes, guessed = table_boxes(self.layout(page.image), width, height)
        recognizer = self.recognizer_for(options)
        places = [padded(box, width, height, MARGIN_PX) for box in boxes]
        crops = [page.image[y0:y1, x0:x1] for x0, y0, x1, y1 in places]
        if isinstance(recognizer, VlmTableRecognizer):
            read = recognizer.read_all(crops)  # the page's tables decode together
        else:
            read = [recognizer(crop) for crop in crops]
        tables = []
        for (x0, y0, x1, y1), table in zip(places, read, strict=True):
            # A region guessed for want of table regions is a table only if it reads as a grid.
            if guessed and (table.rows < 2 or table.cols < 2):
                continue
            tables.append({"bbox": [x0, y0, x1, y1], **_on_page(table, x0, y0).to_dict()})
        return {**page_fields(page), "tables": tables}

    def combine(self, pages: list[dict[str, Any]], options: TableOptions) -> dict[str, Any]:
        tables = [table for page in pages for table in page["tables"]]
        first = tables[0] if tables else {"html": "", "cells": []}
        # The first table at top level: the common case is one table image per request.
        return {
            "html": first["html"],
            "markdown": "\n\n".join(t["markdown"] for t in tables),
            "cells": first["cells"],
            "tables": len(tables),
            "pages": pages,
        }


def _on_page(table: Table, dx: int, dy: int) -> Table:
    """``table`` with its cell boxes moved from crop to page pixels."""
    for cell in table.cells:
        x0, y0, x1, y1 = cell.bbox
        cell.bbox = (x0 + dx, y0 + dy, x1 + dx, y1 + dy)
    return table
