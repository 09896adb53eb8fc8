"""Per page, where its text comes from: the PDF's own text layer, OCR of the pixels, or both.

``mode=auto`` trusts a text layer only after checking it against the page (MinerU's ``parse_method``
decides per document; this decides per page and says why):

1. no text layer (scans, image-only pages) -> OCR;
2. many characters no correct ToUnicode map produces (unmapped glyphs, U+FFFD, private use,
   control characters) -> OCR;
3. a sample of its lines read by the recogniser from the page image: when what the image shows
   disagrees with what the layer says (a broken ToUnicode map yields plausible but wrong letters)
   -> OCR;
4. the page's image objects are searched with the text detector: text drawn as pictures
   (screenshots of code, scanned inserts) that no layer line covers is OCR'd beside the layer's
   lines ("txt+ocr").

``mode=txt`` takes the layer unchecked (a page without one comes back empty); ``mode=ocr`` never
reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ...core import imaging
from ...core.documents import PageImage
from ...core.errors import BadOptions
from ...core.geometry import intersection
from ...core.text_layer import TextLayer, TextLayerLine
from ...core.textmetrics import edit_distance, normalise
from .engine import OcrEngine, TextLine, crop_quad, order_lines, region_canvas

TextMode = Literal["auto", "txt", "ocr"]
TEXT_MODE_DESCRIPTION = (
    "PDF pages: auto uses a page's own text layer where it checks out against the page image and"
    " OCR where it does not (scans, garbage or broken text layers, text drawn as images); txt always"
    " uses the text layer (PDF only); ocr always reads the pixels."
)

# Above this share of suspect characters a layer is not text (measured: 0 on born-digital pages).
MAX_SUSPECT_SHARE = 0.05
# The recogniser's CER on sampled lines above which the layer disagrees with the image. Clean
# layers measure 0-0.05 on the devset's PDFs and the libtasn1 manual; a wrong ToUnicode map ~1.
MAX_SAMPLE_CER = 0.4
SAMPLE_LINES = 8
# Images smaller than this share of the page (bullets, icons, rules) are not searched for text.
MIN_IMAGE_SHARE = 0.005
_SAMPLE_MARGIN = 3  # px around a layer line's box: the recogniser reads tight crops badly


@dataclass(frozen=True)
class PageText:
    """A page's text lines in reading order, the source they came from and why it was chosen."""

    lines: list[TextLine]
    source: Literal["txt", "ocr", "txt+ocr"]
    reason: str


def layer_lines(layer: TextLayer) -> list[TextLine]:
    """The text layer's lines as OCR-shaped lines (confidence 1: the characters are the PDF's own)."""
    return [_as_text_line(line) for line in layer.lines]


def _as_text_line(line: TextLayerLine) -> TextLine:
    x0, y0, x1, y1 = line.bbox
    return TextLine(
        text=line.text, confidence=1.0, polygon=[[x0, y0], [x1, y0], [x1, y1], [x0, y1]], exact=True
    )


def _letters(text: str) -> str:
    """Letters and digits only: what a wrong ToUnicode map changes. Punctuation is left out of the
    comparison, since the recogniser reads dot leaders and rules badly (measured: a table of contents
    disagreed by 0.55 with them, 0.05 without)."""
    return "".join(c for c in normalise(text) if c.isalnum())


def _sampled(lines: tuple[TextLayerLine, ...]) -> list[TextLayerLine]:
    readable = [ln for ln in lines if len(_letters(ln.text)) >= 4 and ln.bbox[3] - ln.bbox[1] >= 6]
    if len(readable) <= SAMPLE_LINES:
        return readable
    picks = np.linspace(0, len(readable) - 1, SAMPLE_LINES).round().astype(int)
    return [readable[i] for i in sorted(set(picks.tolist()))]


def sample_cer(engine: OcrEngine, image_bgr: np.ndarray, layer: TextLayer) -> float | None:
    """CER of the layer's text against what the recogniser reads at the same boxes (None: nothing
    readable to compare)."""
    height, width = image_bgr.shape[:2]
    edits = total = 0
    for line in _sampled(layer.lines):
        x0, y0, x1, y1 = line.bbox
        quad = np.array(
            [
                [max(0.0, x0 - _SAMPLE_MARGIN), max(0.0, y0 - _SAMPLE_MARGIN)],
                [min(width - 1.0, x1 + _SAMPLE_MARGIN), max(0.0, y0 - _SAMPLE_MARGIN)],
                [min(width - 1.0, x1 + _SAMPLE_MARGIN), min(height - 1.0, y1 + _SAMPLE_MARGIN)],
                [max(0.0, x0 - _SAMPLE_MARGIN), min(height - 1.0, y1 + _SAMPLE_MARGIN)],
            ],
            dtype=np.float32,
        )
        read, _ = engine.recognizer(crop_quad(image_bgr, quad))
        truth = _letters(line.text)
        edits += edit_distance(_letters(read), truth)
        total += len(truth)
    return edits / total if total else None


def _drawn_lines(
    engine: OcrEngine, image_bgr: np.ndarray, layer: TextLayer, own: list[TextLine], min_confidence: float
) -> list[TextLine]:
    """Lines the detector finds inside the page's images that no layer line covers (text drawn as
    pixels), recognised. Each image is read at native scale, on its own."""
    page_area = image_bgr.shape[0] * image_bgr.shape[1]
    side = engine.detector.config.limit_side_len
    found: list[TextLine] = []
    for image_box in layer.image_boxes:
        if (image_box[2] - image_box[0]) * (image_box[3] - image_box[1]) < MIN_IMAGE_SHARE * page_area:
            continue
        canvas, (dx, dy) = region_canvas(image_bgr, image_box, _SAMPLE_MARGIN, side)
        for quad in engine.detector(canvas):
            page_quad = quad + np.array([dx, dy], dtype=np.float32)
            box = (*page_quad.min(axis=0).tolist(), *page_quad.max(axis=0).tolist())
            area = max(1.0, (box[2] - box[0]) * (box[3] - box[1]))
            if sum(intersection(box, tuple(line.bbox)) for line in own + found) / area >= 0.3:
                continue
            text, confidence = engine.recognizer(crop_quad(canvas, quad))
            if text.strip() and confidence >= min_confidence:
                found.append(TextLine(text=text, confidence=confidence, polygon=page_quad.tolist()))
    return found


def read_page_text(
    page: PageImage,
    mode: TextMode,
    engine: OcrEngine,
    read_pixels: Callable[[], list[TextLine]],
    min_confidence: float = 0.5,
) -> PageText:
    """The page's lines from the source ``mode`` picks; ``read_pixels`` is the caller's OCR path."""
    layer = page.text_layer
    if mode == "ocr":
        return PageText(read_pixels(), "ocr", "mode=ocr")
    if layer is None:
        if mode == "txt":
            raise BadOptions(
                "mode=txt reads a PDF's text layer; this input is an image: use mode=auto or ocr"
            )
        return PageText(read_pixels(), "ocr", "an image has no text layer")
    own = order_lines(layer_lines(layer))
    if mode == "txt":
        return PageText(own, "txt", "mode=txt")
    return _checked(page, layer, own, engine, read_pixels, min_confidence)


def _checked(
    page: PageImage,
    layer: TextLayer,
    own: list[TextLine],
    engine: OcrEngine,
    read_pixels: Callable[[], list[TextLine]],
    min_confidence: float,
) -> PageText:
    if not layer.chars:
        return PageText(read_pixels(), "ocr", "no text layer (a scanned or image-only page)")
    if layer.suspect_share > MAX_SUSPECT_SHARE:
        return PageText(
            read_pixels(),
            "ocr",
            f"{layer.suspect_share:.0%} of the text layer's characters are unmapped, replacement"
            " (U+FFFD), private-use or control characters (a missing or broken ToUnicode map)",
        )
    image_bgr = imaging.rgb_to_bgr(page.image)
    disagreement = sample_cer(engine, image_bgr, layer)
    if disagreement is not None and disagreement > MAX_SAMPLE_CER:
        return PageText(
            read_pixels(),
            "ocr",
            f"the text layer disagrees with the page image (CER {disagreement:.2f} on sampled lines;"
            " a wrong ToUnicode map or hidden text)",
        )
    drawn = _drawn_lines(engine, image_bgr, layer, own, min_confidence)
    if drawn:
        return PageText(
            order_lines(own + drawn),
            "txt+ocr",
            f"text layer, and {len(drawn)} line(s) drawn as images ({layer.image_coverage:.0%} of"
            " the page is images) read by OCR",
        )
    return PageText(own, "txt", "the text layer checks out against the page image")
