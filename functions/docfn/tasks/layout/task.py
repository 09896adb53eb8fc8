"""The ``layout`` task: per page, regions {type, bbox, score, order} in reading order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.documents import PageImage
from ...packs.refs import OWN_PACK
from ...packs.store import LocalPack
from ..contract import Task, page_fields
from .analyzer import LayoutAnalyzer
from .options import LayoutOptions


class LayoutTask(Task):
    name = "layout"
    Options = LayoutOptions

    analyzer: LayoutAnalyzer

    def load(self, packs: Mapping[str, LocalPack]) -> None:
        pack = packs[OWN_PACK]
        self.analyzer = LayoutAnalyzer(pack.pack_dir, pack.manifest, self.threads)

    def warm_up(self) -> None:
        self.analyzer.warm_up()

    def predict_page(self, page: PageImage, options: LayoutOptions) -> dict[str, Any]:
        regions = self.analyzer(page.image, options.min_score)
        return {**page_fields(page), "regions": [r.to_dict() for r in regions]}
