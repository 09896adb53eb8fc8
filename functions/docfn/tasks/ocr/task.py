"""The ``ocr`` task: text lines with polygons and confidences, and page text in reading order.

PDF pages may take their text from their own text layer instead of the pixels (``mode``, see
:mod:`.text_source`); each page says which it used (``text_source``) and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.documents import PageImage
from ...core.errors import BadOptions
from ...packs.refs import OWN_PACK
from ...packs.store import LocalPack
from ..contract import Task, page_fields
from .engine import OcrEngine, page_text
from .options import OcrOptions
from .text_source import read_page_text


class OcrTask(Task):
    name = "ocr"
    Options = OcrOptions

    engine: OcrEngine
    pack_id: str

    def load(self, packs: Mapping[str, LocalPack]) -> None:
        pack = packs[OWN_PACK]
        self.engine = OcrEngine(pack.pack_dir, pack.manifest, self.threads)
        self.pack_id = pack.manifest.pack_id

    def warm_up(self) -> None:
        self.engine.warm_up()

    def check_options(self, options: OcrOptions) -> None:
        if options.angle_cls and self.engine.classifier is None:
            raise BadOptions(
                f"angle_cls=true needs a pack with a line-angle classifier; {self.pack_id} has"
                " none (use a pack with a cls model, e.g. ocr-ppocrv5-mobile, or leave angle_cls off)"
            )

    def needs_text_layer(self, options: OcrOptions) -> bool:
        return options.mode != "ocr"

    def predict_page(self, page: PageImage, options: OcrOptions) -> dict[str, Any]:
        read = read_page_text(
            page,
            options.mode,
            self.engine,
            lambda: self.engine.recognize_lines(
                page.image, min_confidence=options.min_confidence, use_angle_cls=options.angle_cls
            ),
            options.min_confidence,
        )
        return {
            **page_fields(page),
            "text_source": read.source,
            "text_source_reason": read.reason,
            "lines": [line.to_dict() for line in read.lines],
            "text": page_text(read.lines),
        }

    def combine(self, pages: list[dict[str, Any]], options: OcrOptions) -> dict[str, Any]:
        return {"pages": pages, "text": "\n\n".join(p["text"] for p in pages)}
