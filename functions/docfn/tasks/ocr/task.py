"""The ``ocr`` task: text lines with polygons and confidences, and page text in reading order."""

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


class OcrTask(Task):
    name = "ocr"
    Options = OcrOptions

    engine: OcrEngine
    pack_id: str

    def load(self, packs: Mapping[str, LocalPack]) -> None:
        pack = packs[OWN_PACK]
        self.engine = OcrEngine(pack.pack_dir, pack.manifest, self.threads)
        self.pack_id = pack.manifest.pack_id

    def check_options(self, options: OcrOptions) -> None:
        if options.angle_cls and self.engine.classifier is None:
            raise BadOptions(
                f"angle_cls=true needs a pack with a line-angle classifier; {self.pack_id} has"
                " none (use a pack with a cls model, e.g. ocr-ppocrv5-mobile, or leave angle_cls off)"
            )

    def predict_page(self, page: PageImage, options: OcrOptions) -> dict[str, Any]:
        lines = self.engine.recognize_lines(
            page.image, min_confidence=options.min_confidence, use_angle_cls=options.angle_cls
        )
        return {**page_fields(page), "lines": [line.to_dict() for line in lines], "text": page_text(lines)}

    def combine(self, pages: list[dict[str, Any]], options: OcrOptions) -> dict[str, Any]:
        return {"pages": pages, "text": "\n\n".join(p["text"] for p in pages)}
