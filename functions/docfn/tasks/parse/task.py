"""The ``parse`` task: pages -> Markdown + a MinerU-style content list (+ figure/table/formula crops).

Packs: the layout pack is the task's own (``DOCFN_MODEL_URI``, default ``layout-cdla``); the OCR
pack is a secondary one (``DOCFN_OCR_MODEL_URI``, default the ``ocr`` task's). Both versions feed
the cache key. Pages are rendered, parsed and dropped one at a time: memory stays bounded by one
page plus the (small) blocks gathered so far.

Crops are always referenced by ``img_path``; their PNG bytes travel in the result only with
``images=base64`` (the CLI asks for that and writes files; HTTP clients usually do not want
megabytes of base64 in their JSON, and the cache need not hold them).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ...core.errors import BadOptions
from ...core.inputs import Document
from ...packs.locate import FetchReport
from ..base import Task, parse_float
from ..layout.analyzer import LayoutAnalyzer
from ..ocr.engine import OcrEngine
from ..table.recognizers import table_recognizer
from .blocks import to_markdown
from .page import PageParser
from .recognizers import formula_recognizer, formula_recognizer_names

_IMAGE_MODES = ("none", "base64")
_OCR_MODES = ("page", "region")


def _choice(name: str, value: str | None, default: str, allowed: tuple[str, ...] | list[str]) -> str:
    chosen = default if value is None else value
    if chosen not in allowed:
        raise BadOptions(f"option {name} must be one of {list(allowed)}, not {chosen!r}")
    return chosen


class ParseTask(Task):
    name = "parse"
    extra_packs = ("ocr",)
    cli_options: ClassVar[dict[str, str]] = {"images": "base64"}

    parser: PageParser

    def build(self, pack: FetchReport) -> None:
        threads = self.settings.onnx_threads
        layout = LayoutAnalyzer(pack.pack_dir, pack.manifest, threads)
        ocr_pack = self.extra_fetched["ocr"]
        ocr = OcrEngine(ocr_pack.pack_dir, ocr_pack.manifest, threads)
        self.parser = PageParser(layout, ocr, table_recognizer("classic", ocr=ocr))
        self._ocr = ocr

    def option_names(self) -> list[str]:
        return ["images", "ocr_mode", "min_score", "formula"]

    def parse_options(self, raw: Mapping[str, str]) -> dict[str, Any]:
        super().parse_options(raw)
        return {
            "images": _choice("images", raw.get("images"), "none", _IMAGE_MODES),
            "ocr_mode": _choice("ocr_mode", raw.get("ocr_mode"), "page", _OCR_MODES),
            "min_score": parse_float("min_score", raw.get("min_score"), 0.5, 0.05, 1.0),
            "formula": _choice("formula", raw.get("formula"), "none", formula_recognizer_names()),
        }

    def predict(self, document: Document, pages: list[int], options: dict[str, Any]) -> dict[str, Any]:
        self.parser.formula = formula_recognizer(options["formula"], ocr=self._ocr)
        blocks: list[dict[str, Any]] = []
        images: dict[str, str] = {}
        page_info = []
        for index in pages:
            page = document.render(index)  # one page in memory at a time
            parsed = self.parser(page, ocr_mode=options["ocr_mode"], min_score=options["min_score"])
            width, height = page.size
            del page
            blocks.extend(parsed.blocks)
            page_info.append(
                {"page_idx": index, "width": width, "height": height, "blocks": len(parsed.blocks)}
            )
            if options["images"] == "base64":
                images.update({path: base64.b64encode(png).decode() for path, png in parsed.images.items()})
        result: dict[str, Any] = {
            "markdown": to_markdown(blocks),
            "content_list": blocks,
            "pages": page_info,
        }
        if options["images"] == "base64":
            result["images"] = images
        return result

    def render(self, result: dict[str, Any], fmt: str) -> str:
        if fmt == "md":
            return result["markdown"]
        return "\n\n".join(b.get("text", "") for b in result["content_list"] if b.get("text")) + "\n"

    def write_outputs(
        self, result: dict[str, Any], rendered: str, out_dir: Path, stem: str, fmt: str
    ) -> list[Path]:
        """``STEM.md`` (or .json/.txt), ``STEM.content_list.json`` and ``STEM_images/*.png``; image
        paths in both files point into ``STEM_images/`` relative to the output directory."""
        prefix = f"{stem}_images/"

        def relink(text: str) -> str:
            return text.replace("](images/", f"]({prefix}")

        written: list[Path] = []
        images: dict[str, str] = result.get("images") or {}
        if images:
            (out_dir / prefix).mkdir(parents=True, exist_ok=True)
        for path, data in images.items():
            target = out_dir / prefix / path.removeprefix("images/")
            target.write_bytes(base64.b64decode(data))
            written.append(target)
        content = [
            {**b, "img_path": prefix + b["img_path"].removeprefix("images/")} if "img_path" in b else b
            for b in result["content_list"]
        ]
        listing = out_dir / f"{stem}.content_list.json"
        listing.write_text(json.dumps(content, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        main = out_dir / (stem + {"json": ".json", "md": ".md", "text": ".txt"}[fmt])
        if fmt == "json":
            body = json.loads(rendered)
            body.get("result", {}).pop("images", None)  # they are files now
            rendered = json.dumps(body, ensure_ascii=False, indent=2) + "\n"
        elif fmt == "md":
            rendered = relink(rendered)
        main.write_text(rendered, encoding="utf-8")
        return [main, listing, *written]
