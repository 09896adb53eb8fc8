"""One page through the parse pipeline: layout, OCR, block recognisers, content-list blocks."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ...core import imaging
from ...core.documents import PageImage
from ...core.geometry import enclosing, intersection, normalised_bbox
from ...core.hyphens import SOFT_HYPHEN
from ...core.text_layer import TextLayerWord
from ..layout.analyzer import LayoutAnalyzer, order_regions
from ..layout.detector import Region
from ..layout.regions import dedupe
from ..ocr.engine import OcrEngine, TextLine, crop_quad, order_lines, region_canvas
from ..ocr.text_source import TextMode, read_page_text
from ..table.layer_cells import layer_pieces
from ..table.table_recognizers import TableRecognizer
from ..table.words import Piece
from ..vlm.image_analysis import ImageAnalysis
from .formula_recognizers import FormulaRecognizer
from .text import (
    heading_level,
    is_heading,
    join_lines,
    joined_list_blocks,
    list_items,
    looks_like_code,
    text_segments,
)

# Region types whose words are read by OCR (the rest are cropped or handed to a recogniser).
TEXTUAL = frozenset(
    {"text", "title", "reference", "header", "footer", "figure_caption", "table_caption", "formula"}
)
# Share of a "figure" covered by OCR line boxes above which it is text. Measured on the devset:
# boxed code listings and a page-sized framed "figure" 0.21-0.38, a real diagram with labels 0.10.
TEXTY_FIGURE = 0.18
# Headers and footers live in the top and bottom this-much of the page (libtasn1's running heads
# end at 8 % of the height, its footers start at 93 %; its title page's "header" lines at 27 %).
MARGIN_SHARE = 0.15
_MARGIN = 6  # px of context around a crop: detector boxes are tight and clip descenders


class ChartReader(Protocol):
    def __call__(self, image_rgb: np.ndarray) -> ImageAnalysis: ...


@dataclass(frozen=True)
class _Recognizers:
    """The block recognisers of one call: formula crops, table crops, figure analysis."""

    formula: FormulaRecognizer | None
    table: TableRecognizer
    chart: ChartReader | None


def _prefetch(image: np.ndarray, regions: list[Region], recognizers: _Recognizers) -> None:
    """Tell the recognisers that read crops ahead (the VLM's) every crop of theirs on the page, so
    they submit them together rather than one block at a time."""
    for kind, recognizer in (
        ("formula", recognizers.formula),
        ("table", recognizers.table),
        ("figure", recognizers.chart),
    ):
        prefetch = getattr(recognizer, "prefetch", None)
        if prefetch is not None:
            crops = [_crop(image, region.bbox) for region in regions if region.type == kind]
            if crops:
                prefetch(crops)


@dataclass
class ParsedPage:
    blocks: list[dict[str, Any]]
    images: dict[str, bytes] = field(default_factory=dict)  # img_path -> PNG bytes
    regions: int = 0
    text_source: str = "ocr"  # where the words came from: txt, ocr or txt+ocr (see ocr.text_source)
    text_reason: str = ""
    layer_words: tuple[TextLayerWord, ...] | None = None  # the trusted layer's words (tables' cells)


def _crop_box(
    image: np.ndarray, bbox: tuple[float, float, float, float], margin: int = _MARGIN
) -> tuple[int, int, int, int]:
    """The pixel box a region's crop takes: its bbox grown by ``margin``, clipped to the page."""
    height, width = image.shape[:2]
    x0, y0 = max(0, int(bbox[0]) - margin), max(0, int(bbox[1]) - margin)
    x1, y1 = min(width, int(np.ceil(bbox[2])) + margin), min(height, int(np.ceil(bbox[3])) + margin)
    return x0, y0, x1, y1


def _crop(image: np.ndarray, bbox: tuple[float, float, float, float], margin: int = _MARGIN) -> np.ndarray:
    x0, y0, x1, y1 = _crop_box(image, bbox, margin)
    return image[y0:y1, x0:x1]


def _table_words(
    page: PageImage, region: Region, layer_words: tuple[TextLayerWord, ...] | None
) -> list[Piece] | None:
    """The trusted text layer's words inside a table region's crop (crop pixels): the words of the
    lines ``read_page_text`` kept (``txt``, or ``txt+ocr``: never a scanner's invisible layer or a
    font whose map is wrong); None: no layer was trusted, OCR the cells."""
    if layer_words is None:
        return None
    x0, y0, x1, y1 = _crop_box(page.image, region.bbox)
    return layer_pieces(layer_words, (float(x0), float(y0), float(x1), float(y1)))


def _png(image_rgb: np.ndarray) -> bytes:
    return imaging.encode_png(image_rgb)


def _split_at_regions(quad: np.ndarray, regions: list[Region]) -> list[np.ndarray]:
    """A detected line crossing a column gutter (the text detector joins lines across narrow
    gutters) is cut at the boundaries of the regions it spans, so each part is read on its own."""
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    spans = []
    for r in regions:
        if r.bbox[1] < (y0 + y1) / 2 < r.bbox[3]:
            a, b = max(x0, r.bbox[0]), min(x1, r.bbox[2])
            if b - a > max(8.0, 0.1 * (x1 - x0)):
                spans.append((a, b))
    spans.sort()
    disjoint = all(s[1] <= t[0] + 2 for s, t in itertools.pairwise(spans))
    if len(spans) < 2 or not disjoint or abs(quad[0][1] - quad[1][1]) > 3:  # only upright lines
        return [quad]
    cuts = [x0, *[(s[1] + t[0]) / 2 for s, t in itertools.pairwise(spans)], x1]
    return [
        np.array([[a, y0], [b, y0], [b, y1], [a, y1]], dtype=np.float32) for a, b in itertools.pairwise(cuts)
    ]


def _read_page(ocr: OcrEngine, image_rgb: np.ndarray, layout: Callable[[], list[Region]]) -> list[TextLine]:
    """Detect text once on the whole page, split lines at the boundaries of the regions ``layout``
    gives (asked for once detection is done: the layout model runs meanwhile), recognise each."""
    image = imaging.rgb_to_bgr(image_rgb)
    quads = ocr.detector(image)
    regions = layout()
    lines = []
    for quad in quads:
        for part in _split_at_regions(quad, regions):
            text, confidence = ocr.recognizer(crop_quad(image, part))
            if text.strip() and confidence >= 0.5:
                lines.append(TextLine(text=text, confidence=confidence, polygon=part.tolist()))
    return lines


def _assign(lines: list[TextLine], regions: list[Region]) -> tuple[dict[int, list[TextLine]], list[TextLine]]:
    """Each line to the smallest region holding at least half of it (or half of which it holds:
    a page number's box is smaller than its text line's); the rest are orphans."""
    owned: dict[int, list[TextLine]] = {}
    orphans: list[TextLine] = []
    for line in lines:
        box = tuple(line.bbox)
        area = max(1.0, (box[2] - box[0]) * (box[3] - box[1]))
        holders = [
            i for i, r in enumerate(regions) if intersection(box, r.bbox) / max(1.0, min(area, r.area)) >= 0.5
        ]
        if holders:
            owned.setdefault(min(holders, key=lambda i: regions[i].area), []).append(line)
        else:
            orphans.append(line)
    return owned, orphans


def _orphan_blocks(orphans: list[TextLine]) -> list[tuple[Region, list[TextLine]]]:
    """Lines no region claimed (the detector missed them) grouped into paragraphs, so no text is
    lost: consecutive lines closer than a line height that overlap horizontally."""
    groups: list[list[TextLine]] = []
    for line in order_lines(orphans):
        if groups:
            last = groups[-1][-1]
            height = last.bbox[3] - last.bbox[1]
            gap = line.bbox[1] - last.bbox[3]
            overlaps = line.bbox[0] < max(ln.bbox[2] for ln in groups[-1]) and line.bbox[2] > min(
                ln.bbox[0] for ln in groups[-1]
            )
            if -height < gap < height and overlaps:
                groups[-1].append(line)
                continue
        groups.append([line])
    out = []
    for group in groups:
        out.append((Region("text", enclosing(tuple(ln.bbox) for ln in group), 0.0), group))
    return out


def _retype_texty_figure(region: Region, lines: list[TextLine]) -> Region:
    """CDLA calls boxed code listings and framed text "figure"; dropping their words would lose
    most of such a page. A figure whose area is mostly covered by text lines is read as text, or as
    code when its lines look like code."""
    if region.type != "figure" or not region.area:
        return region
    covered = sum((ln.bbox[2] - ln.bbox[0]) * (ln.bbox[3] - ln.bbox[1]) for ln in lines)
    if covered / region.area < TEXTY_FIGURE:
        return region
    return Region("code" if looks_like_code(lines) else "text", region.bbox, region.score)


def _furniture_in_margins(region: Region, page_height: int) -> Region:
    """A header or footer is furniture only in the page's top or bottom margin; CDLA also calls a
    title page's title and author lines "header", and those are text."""
    if region.type == "header" and region.bbox[1] > MARGIN_SHARE * page_height:
        return Region("text", region.bbox, region.score)
    if region.type == "footer" and region.bbox[3] < (1 - MARGIN_SHARE) * page_height:
        return Region("text", region.bbox, region.score)
    return region


def _text_block(lines: list[TextLine]) -> dict[str, Any]:
    """A paragraph, or a list when most of its lines start items."""
    items = list_items(lines)
    if items:
        return {"type": "list", "sub_type": "text", "list_items": items}
    return {"type": "text", "text": join_lines(lines)}


def _code_block(lines: list[TextLine], captions: list[str]) -> dict[str, Any]:
    """Code keeps its line breaks (and, from a text layer, its characters exactly)."""
    return {
        "type": "code",
        "sub_type": "code",
        # A code line never breaks a word: a line-end hyphen is printed (see core.hyphens).
        "code_body": "\n".join(ln.text.replace(SOFT_HYPHEN, "-") for ln in lines),
        "code_caption": captions,
    }


def _offset(line: TextLine, dx: float, dy: float) -> TextLine:
    return TextLine(line.text, line.confidence, [[x + dx, y + dy] for x, y in line.polygon])


class PageParser:
    def __init__(
        self,
        layout: LayoutAnalyzer,
        ocr: OcrEngine,
        table: TableRecognizer,
    ) -> None:
        self.layout = layout
        self.ocr = ocr
        self.table = table

    def _region_lines(self, image: np.ndarray, region: Region) -> list[TextLine]:
        """OCR of one region crop at native scale."""
        canvas, (x0, y0) = region_canvas(image, region.bbox, _MARGIN, self.ocr.detector.config.limit_side_len)
        return [_offset(line, x0, y0) for line in self.ocr.recognize_lines(canvas)]

    def __call__(
        self,
        page: PageImage,
        *,
        mode: TextMode = "auto",
        ocr_mode: str = "page",
        min_score: float = 0.5,
        formula: FormulaRecognizer | None = None,
        table: TableRecognizer | None = None,
        chart: ChartReader | None = None,
        crops: bool = True,
    ) -> ParsedPage:
        """One page's blocks; ``formula`` recognises formula crops (None: they keep their OCR text),
        ``table`` table crops (None: the parser's own), ``chart`` analyses figures (None: a figure is
        its crop, caption and the words OCR finds in it). ``crops``: figure, table and formula crops
        are PNG-encoded and referenced by ``img_path``; False (``images=none``) skips both, since
        nothing would carry the PNGs and a path to no file only misleads."""
        recognizers = _Recognizers(formula, table or self.table, chart)
        image = page.image
        height, width = image.shape[:2]
        # The layout model runs on the compute pool while this thread reads the page's text (the
        # text layer, its check, or OCR's detector): neither needs the other's result until OCR
        # splits its lines at region boundaries.
        detected = self.ocr.pool.submit(self.layout.detector, image, min_score)

        def layout() -> list[Region]:
            return [_furniture_in_margins(r, height) for r in dedupe(detected.result())]

        try:
            # Pixels read once for the page (ocr_mode=page), or region by region below.
            text = read_page_text(
                page,
                mode,
                self.ocr,
                lambda: _read_page(self.ocr, image, layout) if ocr_mode == "page" else [],
            )
        finally:
            regions = layout()
        if text.source == "ocr" and ocr_mode == "region":
            pairs = [(r, self._region_lines(image, r) if r.type in TEXTUAL else []) for r in regions]
        else:
            owned, orphans = _assign(text.lines, regions)
            pairs = [
                (_retype_texty_figure(r, owned.get(i, [])), order_lines(owned.get(i, [])))
                for i, r in enumerate(regions)
            ]
            pairs += _orphan_blocks(orphans)
        lines_of = {id(region): lines for region, lines in pairs}
        ordered = [o.region for o in order_regions([r for r, _ in pairs], width)]

        body_heights = [
            ln.bbox[3] - ln.bbox[1] for r in ordered if r.type == "text" for ln in lines_of[id(r)]
        ]
        body_height = statistics.median(body_heights) if body_heights else 0.0
        captions = self._attach_captions(ordered)

        parsed = ParsedPage(
            blocks=[],
            regions=len(regions),
            text_source=text.source,
            text_reason=text.reason,
            layer_words=text.layer_words,
        )
        _prefetch(page.image, [r for r in ordered if id(r) not in captions["attached"]], recognizers)
        for n, region in enumerate(ordered):
            if id(region) in captions["attached"]:
                continue
            region_lines = lines_of[id(region)]
            segments = text_segments(region_lines) if region.type in {"text", "reference"} else []
            if len(segments) > 1:  # a paragraph, an example and a list boxed as one region
                for kind, segment in segments:
                    block = _code_block(segment, []) if kind == "code" else _text_block(segment)
                    if region.type == "reference" and block["type"] == "text":
                        block["type"] = "ref_text"
                    box = enclosing(tuple(ln.bbox) for ln in segment)
                    parsed.blocks.append(
                        {**block, "bbox": normalised_bbox(box, width, height), "page_idx": page.index}
                    )
                continue
            block = self._block(
                page, region, n, region_lines, body_height, captions, lines_of, parsed, recognizers, crops
            )
            if block is not None:
                block["bbox"] = normalised_bbox(region.bbox, width, height)
                block["page_idx"] = page.index
                parsed.blocks.append(block)
        parsed.blocks = joined_list_blocks(parsed.blocks)
        return parsed

    @staticmethod
    def _attach_captions(ordered: list[Region]) -> dict[str, Any]:
        """Each caption to the nearest figure/table of its kind (by vertical distance, overlapping
        horizontally); a caption with no partner stays a text block."""
        owners: dict[int, list[Region]] = {}
        attached: set[int] = set()
        for caption_type, owner_type in (("figure_caption", "figure"), ("table_caption", "table")):
            candidates = [r for r in ordered if r.type == owner_type]
            for caption in (r for r in ordered if r.type == caption_type):
                near = [c for c in candidates if c.bbox[0] < caption.bbox[2] and c.bbox[2] > caption.bbox[0]]
                if not near:
                    continue
                owner = min(
                    near,
                    key=lambda c: min(abs(c.bbox[1] - caption.bbox[3]), abs(caption.bbox[1] - c.bbox[3])),
                )
                owners.setdefault(id(owner), []).append(caption)
                attached.add(id(caption))
        return {"owners": owners, "attached": attached}

    def _block(
        self,
        page: PageImage,
        region: Region,
        n: int,
        lines: list[TextLine],
        body_height: float,
        captions: dict[str, Any],
        lines_of: dict[int, list[TextLine]],
        parsed: ParsedPage,
        recognizers: _Recognizers,
        crops: bool,
    ) -> dict[str, Any] | None:
        kind = region.type
        text = join_lines(lines)
        caption_texts = [join_lines(lines_of[id(c)]) for c in captions["owners"].get(id(region), [])]
        img_path = f"images/page{page.index + 1}-{n}-{kind}.png"
        if kind == "title":
            if not text:
                return None
            if not is_heading(text, len(lines)):
                return {"type": "text", "text": text}
            height = statistics.median([ln.bbox[3] - ln.bbox[1] for ln in lines]) if lines else 0.0
            return {"type": "text", "text": text, "text_level": heading_level(text, height, body_height)}
        if kind == "code":
            return _code_block(lines, caption_texts) if lines else None
        if kind == "text":
            return _text_block(lines) if text else None
        if kind in {"figure_caption", "table_caption"}:
            return {"type": "text", "text": text} if text else None
        if kind == "reference":
            return {"type": "ref_text", "text": text} if text else None
        if kind == "header":
            return {"type": "header", "text": text}
        if kind == "footer":
            return {"type": "page_number" if text.strip().isdigit() else "footer", "text": text}
        crop = _crop(page.image, region.bbox)
        # The crop's PNG and its path exist only when the result carries crops.
        image_ref: dict[str, str] = {}
        if crops:
            parsed.images[img_path] = _png(crop)
            image_ref["img_path"] = img_path
        if kind == "figure":
            figure = {
                "type": "image",
                **image_ref,
                "image_caption": caption_texts,
                "image_footnote": [],
                # Words drawn in the picture (a diagram's labels): kept for search, not in Markdown.
                "image_text": text,
            }
            if recognizers.chart is not None:
                analysis = recognizers.chart(crop)
                figure["sub_type"] = analysis.kind or "image"
                figure["image_analysis"] = analysis.to_dict()
            return figure
        if kind == "table":
            table = recognizers.table(crop, words=_table_words(page, region, parsed.layer_words))
            return {
                "type": "table",
                **image_ref,
                "table_caption": caption_texts,
                "table_footnote": [],
                "table_body": table.to_html(),
                "table_rows": table.rows,
                "table_cols": table.cols,
            }
        if kind == "formula":
            latex = recognizers.formula(crop) if recognizers.formula is not None else None
            return {
                "type": "equation",
                **image_ref,
                "latex": latex,
                "text": latex if latex else text,
                "text_format": "latex" if latex else "ocr",
            }
        return {"type": "text", "text": text} if text else None
