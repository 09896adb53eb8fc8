"""One page parsed by MinerU2.5's two steps (``engine=vlm``): the VLM's layout, then every block
read by the VLM with its type's prompt, assembled into the content-list blocks of ``blocks.py``.

How MinerU2.5's block types land in the content list: titles are headings (``doc_title`` and
``title`` level 1, ``paragraph_title`` level 2); text that continues the previous text block (another
column) joins it; runs of ``list_item`` are one list; ``code`` and ``algorithm`` are code; captions
and footnotes go to the nearest table, picture or code of their kind (else they stay text); a
``formula_number`` beside an equation becomes its ``\\tag``; tables carry OTSL read into HTML;
equations their LaTeX; pictures and charts their image analysis. Containers (``list``,
``equation_block``, ``image_block``) are not read themselves: their members are. Text and formulas
inside a table are the table's (MinerU drops those blocks too). Page furniture (header, footer,
page number, aside text, page footnote) stays in the list and out of the Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ...core import imaging
from ...core.documents import PageImage
from ..vlm.mineru import CONTAINERS, LayoutBlock, block_crop, pixel_box
from ..vlm.reader import BlockReader, analysis_of, formula_of, table_of, text_of
from .page import ParsedPage

if TYPE_CHECKING:
    from ..vlm.generation import Generation

HEADING_LEVELS = {"doc_title": 1, "title": 1, "paragraph_title": 2}
FURNITURE_TYPES = {"header": "header", "footer": "footer", "page_number": "page_number",
                   "aside_text": "aside_text", "page_footnote": "page_footnote"}  # fmt: skip
# Caption and footnote types -> the block types they belong to.
ATTACHED = {
    "table_caption": ("table",),
    "table_footnote": ("table",),
    "image_caption": ("image", "chart"),
    "image_footnote": ("image", "chart"),
    "code_caption": ("code", "algorithm"),
    "caption": ("table", "image", "chart", "code", "algorithm"),
    "footnote": ("table", "image", "chart", "code", "algorithm"),
}
# Share of a block inside a table above which it is the table's own text.
INSIDE = 0.9


@dataclass
class _Read:
    block: LayoutBlock
    index: int
    out: dict[str, Any]
    captions: list[str] = field(default_factory=list)
    footnotes: list[str] = field(default_factory=list)


def _covered(inner: tuple[float, ...], outer: tuple[float, ...]) -> float:
    w = max(0.0, min(inner[2], outer[2]) - max(inner[0], outer[0]))
    h = max(0.0, min(inner[3], outer[3]) - max(inner[1], outer[1]))
    size = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return w * h / size if size > 0 else 0.0


def _kept(blocks: list[LayoutBlock]) -> list[LayoutBlock]:
    tables = [b.bbox for b in blocks if b.type == "table"]
    return [
        b
        for b in blocks
        if b.type not in CONTAINERS
        and not (b.type in {"text", "equation"} and any(_covered(b.bbox, t) >= INSIDE for t in tables))
    ]


def _nearest(caption: LayoutBlock, owners: list[_Read]) -> _Read | None:
    """The owner overlapping the caption horizontally that is vertically closest."""
    x0, y0, x1, y1 = caption.bbox
    near = [o for o in owners if o.block.bbox[0] < x1 and o.block.bbox[2] > x0]
    if not near:
        return None
    return min(near, key=lambda o: min(abs(o.block.bbox[1] - y1), abs(y0 - o.block.bbox[3])))


def _same_line(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return min(a[3], b[3]) - max(a[1], b[1]) > 0.5 * min(a[3] - a[1], b[3] - b[1])


class VlmPageParser:
    def __init__(self, reader: BlockReader, *, crops: bool = True) -> None:
        self.reader = reader
        self.crops = crops  # PNG-encode crops and reference them by img_path (False: images=none)

    def __call__(self, page: PageImage) -> ParsedPage:
        image = Image.fromarray(page.image)
        layout = _kept(self.reader.layout(image))
        parsed = ParsedPage(blocks=[], regions=len(layout), text_source="vlm", text_reason="engine=vlm")
        # Every block at once: they decode together in the engine's batch, not one after another.
        answers = self.reader.submit([(block_crop(image, b), b.type) for b in layout])
        reads: list[_Read] = []
        for n, (block, answer) in enumerate(zip(layout, answers, strict=True)):
            reads.append(_Read(block, n, self._read(page, image, block, n, parsed, answer.result())))
        self._attach(reads)
        for read in reads:
            if read.out:
                read.out["bbox"] = [round(v * 1000) for v in read.block.bbox]
                read.out["page_idx"] = page.index
                parsed.blocks.append(read.out)
        parsed.blocks = _joined(parsed.blocks, reads)
        return parsed

    def _read(
        self,
        page: PageImage,
        image: Image.Image,
        block: LayoutBlock,
        n: int,
        parsed: ParsedPage,
        answer: Generation,
    ) -> dict[str, Any]:
        kind = block.type
        if kind in {"table", "equation", "image", "chart"}:
            image_ref: dict[str, str] = {}
            if self.crops:  # no PNG and no path when the result carries no crops (images=none)
                img_path = f"images/page{page.index + 1}-{n}-{kind}.png"
                x0, y0, x1, y1 = pixel_box(block, image.width, image.height)
                parsed.images[img_path] = imaging.encode_png(np.ascontiguousarray(page.image[y0:y1, x0:x1]))
                image_ref["img_path"] = img_path
            if kind == "table":
                table = table_of(answer)
                return {
                    "type": "table",
                    **image_ref,
                    "table_caption": [],
                    "table_footnote": [],
                    "table_body": table.to_html() if table.cells else "",
                    "table_rows": table.rows,
                    "table_cols": table.cols,
                }
            if kind == "equation":
                latex = formula_of(answer).latex
                return {
                    "type": "equation",
                    **image_ref,
                    "latex": latex or None,
                    "text": latex,
                    "text_format": "latex",
                }
            analysis = analysis_of(answer)
            return {
                "type": "image",
                "sub_type": analysis.kind or kind,
                **image_ref,
                "image_caption": [],
                "image_footnote": [],
                "image_analysis": analysis.to_dict(),
            }
        text = text_of(answer)
        if not text:
            return {}
        if kind in HEADING_LEVELS:
            return {"type": "text", "text": text, "text_level": HEADING_LEVELS[kind]}
        if kind in FURNITURE_TYPES:
            return {"type": FURNITURE_TYPES[kind], "text": text}
        if kind in {"code", "algorithm"}:
            return {"type": "code", "sub_type": kind, "code_body": text, "code_caption": []}
        if kind == "ref_text":
            return {"type": "ref_text", "text": text}
        return {"type": "text", "text": text}

    @staticmethod
    def _attach(reads: list[_Read]) -> None:
        """Captions and footnotes into their owners, formula numbers into their equations."""
        for read in reads:
            kind = read.block.type
            text = read.out.get("text", "")
            if kind in ATTACHED and text:
                owners = [o for o in reads if o.block.type in ATTACHED[kind] and o.out]
                owner = _nearest(read.block, owners)
                if owner is not None:
                    key = "footnote" if kind.endswith("footnote") else "caption"
                    field_name = {"table": "table", "image": "image", "code": "code"}[owner.out["type"]]
                    owner.out.setdefault(f"{field_name}_{key}", []).append(text)
                    read.out = {}
            elif kind == "formula_number" and text:
                equations = [o for o in reads if o.block.type == "equation" and o.out.get("latex")]
                beside = [o for o in equations if _same_line(o.block.bbox, read.block.bbox)]
                if beside:
                    equation = beside[0].out
                    number = text.strip().strip("()")
                    equation["latex"] = f"{equation['latex']} \\tag{{{number}}}"
                    equation["text"] = equation["latex"]
                    read.out = {}


def _joined(blocks: list[dict[str, Any]], reads: list[_Read]) -> list[dict[str, Any]]:
    """Continued text joined to the text before it; runs of list items as one list block."""
    continues = {id(r.out) for r in reads if r.block.continues}
    items = {id(r.out) for r in reads if r.block.type == "list_item"}
    out: list[dict[str, Any]] = []
    for block in blocks:
        last = out[-1] if out else None
        if (
            id(block) in continues
            and last is not None
            and last["type"] == "text"
            and not last.get("text_level")
        ):
            last["text"] = f"{last['text']} {block['text']}"
            continue
        if id(block) in items:
            if last is not None and last.get("sub_type") == "list_items":
                last["list_items"].append(block["text"])
                last["bbox"] = [min(a, b) if i < 2 else max(a, b) for i, (a, b) in enumerate(
                    zip(last["bbox"], block["bbox"], strict=True))]  # fmt: skip
                continue
            block = {"type": "list", "sub_type": "list_items", "list_items": [block["text"]],
                     "bbox": block["bbox"], "page_idx": block["page_idx"]}  # fmt: skip
        out.append(block)
    for block in out:
        if block.get("sub_type") == "list_items":
            block["sub_type"] = "text"
    return out
