"""The ``parse`` task: pages -> Markdown + a MinerU-style content list (+ figure/table/formula crops).

Packs: the layout pack is the task's own (``DOCFN_MODEL_URI``, default ``layout-cdla``); the OCR
pack (``DOCFN_OCR_MODEL_URI``, default the ``ocr`` task's) and SLANet-plus for table regions
(``DOCFN_TABLE_STRUCTURE_MODEL_URI``, default ``table-slanet-plus``) are secondary. Every version
feeds the cache key. Pages are parsed one at a time: memory stays bounded by one page plus the (small) blocks
gathered so far.

Crops are PNG-encoded and referenced by ``img_path`` in the content list only when the result
carries them: with ``images=none`` no crop is encoded and no block has an ``img_path``. Their PNG
bytes travel in the result with ``images=base64`` (the CLI asks for that and writes files or data URIs; HTTP
clients usually do not want megabytes of base64 in their JSON, and the cache need not hold them) or
inside the Markdown with ``images=embed``. The Markdown links only to crops that travel with it.

The VLM pack (``DOCFN_VLM_MODEL_URI``) is optional: loaded by the first request that sends blocks to
it (``vlm_blocks``) or the whole page (``engine=vlm``, MinerU2.5's two steps, ``vlm_page``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from ...core.documents import PageImage
from ...core.settings import Settings
from ...packs.refs import OWN_PACK
from ...packs.store import LocalPack
from ..contract import Task
from ..instruction import InstructionNotApplied
from ..layout.analyzer import LayoutAnalyzer
from ..ocr.engine import OcrEngine
from ..table.slanet import STRUCTURE_PACK, SlanetStructure
from ..table.table_recognizers import TableRecognizer, table_recognizer
from ..table.vlm_recognizer import table_in_crop
from ..vlm import loading
from ..vlm.batching import Batching
from ..vlm.blocks import VLM_PACK
from ..vlm.reader import BlockReader, analysis_of, formula_of
from .blocks import ImageLink, to_markdown
from .chunks import chunk_markdown
from .formula_recognizers import FormulaRecognizer, formula_recognizer
from .options import ParseOptions
from .page import ChartReader, PageParser, ParsedPage
from .vlm_crops import VlmCrops
from .vlm_page import VlmPageParser

OCR_PACK = "ocr"


class ParseTask(Task):
    name = "parse"
    Options = ParseOptions
    pack_roles = (OWN_PACK, OCR_PACK, STRUCTURE_PACK)
    optional_pack_roles = (VLM_PACK,)

    parser: PageParser
    vlm: BlockReader | None = None

    def __init__(
        self, threads: int = 0, vlm_blocks: tuple[str, ...] = (), vlm_max_tokens: int = 4096
    ) -> None:
        super().__init__(threads)
        self.vlm_blocks = vlm_blocks  # the deployment's default of option vlm_blocks
        self.vlm_max_tokens = vlm_max_tokens
        self.vlm_batching = Batching()

    @classmethod
    def from_settings(cls, settings: Settings) -> ParseTask:
        # Unset: the blocks the pipeline cannot read at all (formula LaTeX, chart data) go to the VLM
        # when a VLM pack is configured; tables stay with the recogniser measured on the devset.
        if settings.parse_vlm_blocks is not None:
            blocks = tuple(settings.parse_vlm_blocks)
        else:
            blocks = ("formula", "chart") if settings.vlm_model_uri else ()
        task = cls(settings.onnx_threads, blocks, settings.vlm_max_tokens)
        task.vlm_batching = Batching.from_settings(settings)
        return task

    def resolve_options(self, options: ParseOptions) -> ParseOptions:
        if options.vlm_blocks is not None:
            return options
        return ParseOptions.model_validate({**options.model_dump(), "vlm_blocks": ",".join(self.vlm_blocks)})

    def apply_instruction(self, options: ParseOptions, instruction: str) -> ParseOptions:
        if options.engine == "vlm" or options.vlm_block_types():
            sent = "every block" if options.engine == "vlm" else ", ".join(sorted(options.vlm_block_types()))
            raise InstructionNotApplied(
                f"not applied: parse reads the blocks it sends to the VLM ({sent}) each with its block"
                " type's MinerU2.5 prompt, which the answer's structure depends on; send a block's image"
                " to /formula, /chart or /vlm to ask in your own words"
            )
        raise InstructionNotApplied(
            "not applied: parse ran without a VLM here (layout, OCR and table models, which take no"
            " prompt; no VLM blocks: option vlm_blocks, DOCFN_PARSE_VLM_BLOCKS); send the image to"
            " /vlm to ask the VLM in your own words"
        )

    def optional_roles_for(self, options: ParseOptions) -> tuple[str, ...]:
        return (VLM_PACK,) if options.engine == "vlm" or options.vlm_block_types() else ()

    def load_optional(self, role: str, pack: LocalPack) -> None:
        self.vlm = BlockReader(
            loading.load_engine(pack, self.threads, self.vlm_batching), self.vlm_max_tokens
        )

    def load(self, packs: Mapping[str, LocalPack]) -> None:
        layout_pack, ocr_pack, structure_pack = packs[OWN_PACK], packs[OCR_PACK], packs[STRUCTURE_PACK]
        layout = LayoutAnalyzer(layout_pack.pack_dir, layout_pack.manifest, self.threads)
        ocr = OcrEngine(ocr_pack.pack_dir, ocr_pack.manifest, self.threads)
        structure = SlanetStructure(structure_pack.pack_dir, structure_pack.manifest, self.threads)
        # The table task's default recogniser: the method measured best per kind of table.
        self.parser = PageParser(layout, ocr, table_recognizer("auto", ocr=ocr, structure=structure))
        self._ocr = ocr

    def warm_up(self) -> None:
        self.parser.layout.warm_up()
        self._ocr.warm_up()

    def needs_text_layer(self, options: ParseOptions) -> bool:
        return options.mode != "ocr"

    def predict_page(self, page: PageImage, options: ParseOptions) -> dict[str, Any]:
        if options.engine == "vlm":
            assert self.vlm is not None  # the service loads the optional pack first
            parsed = VlmPageParser(self.vlm, crops=options.images != "none")(page)
        else:
            parsed = self._pipeline(page, options)
        width, height = page.size
        result: dict[str, Any] = {
            "blocks": parsed.blocks,
            "info": {
                "page_idx": page.index,
                "width": width,
                "height": height,
                "blocks": len(parsed.blocks),
                "text_source": parsed.text_source,
                "text_source_reason": parsed.text_reason,
            },
        }
        if options.images != "none":
            result["images"] = {path: base64.b64encode(png).decode() for path, png in parsed.images.items()}
        return result

    def _pipeline(self, page: PageImage, options: ParseOptions) -> ParsedPage:
        routed = options.vlm_block_types()
        vlm = self.vlm
        formula: FormulaRecognizer | None = formula_recognizer(options.formula, ocr=self._ocr)
        table: TableRecognizer | None = None
        chart: ChartReader | None = None
        # The VLM's recognisers are told the page's crops first: they decode together (vlm_crops).
        if vlm is not None and "formula" in routed:
            formula = VlmCrops(vlm, "equation", lambda answer, _: formula_of(answer).latex or None)
        if vlm is not None and "table" in routed:
            table = VlmCrops(vlm, "table", table_in_crop)
        if vlm is not None and "chart" in routed:
            chart = VlmCrops(vlm, "chart", lambda answer, _: analysis_of(answer))
        return self.parser(
            page,
            mode=options.mode,
            ocr_mode=options.ocr_mode,
            min_score=options.min_score,
            formula=formula,
            table=table,
            chart=chart,
            crops=options.images != "none",
        )

    def combine(self, pages: list[dict[str, Any]], options: ParseOptions) -> dict[str, Any]:
        blocks = [block for page in pages for block in page["blocks"]]
        images = {path: data for page in pages for path, data in page.get("images", {}).items()}
        link = _image_links(options.images, images)
        markdown = to_markdown(blocks, link)
        result: dict[str, Any] = {
            "markdown": markdown,
            "content_list": blocks,
            "pages": [page["info"] for page in pages],
        }
        if options.chunks:
            result["chunks"] = chunk_markdown(
                blocks, link, markdown, options.chunk_tokens, options.chunk_overlap
            )
        if options.images == "base64":
            result["images"] = images
        return result


def _image_links(images: str, crops: dict[str, str]) -> ImageLink:
    """Where the Markdown's image links point: the crops that travel with the result, or nowhere."""
    if images == "embed":
        return lambda path: f"data:image/png;base64,{crops[path]}"
    if images == "base64":
        return lambda path: path
    return lambda path: None
