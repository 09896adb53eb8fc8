"""Per page, where its text comes from: the PDF's own text layer, OCR of the pixels, or both.

``mode=auto`` trusts a text layer only when it earns it, checked against the page (MinerU's
``parse_method`` decides per document; this decides per page, per font and per line, and says why):

1. no text layer (scans, image-only pages) -> OCR;
2. many characters no correct ToUnicode map produces (unmapped glyphs, U+FFFD, private use,
   control characters) -> OCR;
3. invisible text (render mode 3) over images is a scanner's OCR layer, not the document's text:
   set aside (a searchable scan whose layer is nothing else -> OCR);
4. two sampled lines of every font and more spread over the page, a short run of words of each
   read by the recogniser at the layer's own boxes (no detector): a font whose layer disagrees
   with what the image shows (a wrong ToUnicode map yields plausible but wrong letters) has its
   lines re-read at their boxes ("txt+ocr"), or the page is OCR'd when those are most of it;
5. the page's image objects are searched with the text detector: text drawn as pictures
   (screenshots of code, scanned inserts) that no kept line covers is OCR'd beside the layer's
   lines ("txt+ocr").

``mode=txt`` takes the layer unchecked (a page without one comes back empty); ``mode=ocr`` never
reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ...core import imaging
from ...core.documents import PageImage
from ...core.errors import BadOptions
from ...core.geometry import intersection
from ...core.text_layer import TextLayer, TextLayerLine, TextLayerWord
from ...core.textmetrics import edit_distance, normalise
from .engine import OcrEngine, TextLine, crop_quad, order_lines, region_canvas

TextMode = Literal["auto", "txt", "ocr"]
TEXT_MODE_DESCRIPTION = (
    "PDF pages: auto uses a page's own text layer where it checks out against the page image and"
    " OCR where it does not (scans, searchable scans' invisible OCR layers, garbage or wrong text"
    " layers, text drawn as images); txt always uses the text layer (PDF only); ocr always reads the"
    " pixels."
)

# Above this share of suspect characters a layer is not text (measured: 0 on born-digital pages).
MAX_SUSPECT_SHARE = 0.05
# The recogniser's CER (letters and digits) on a font's sampled lines above which its layer
# disagrees with the image. Measured with scripts/bench.py text_layer: clean layers 0-0.05 per page
# (libtasn1 manual, shared-mime-info spec, groff pages); a ToUnicode map wrong in the vowels only
# 0.3, one naming every letter as the next ~0.75-1.
MAX_SAMPLE_CER = 0.15
SAMPLE_LINES = 6  # in all, spread over the page (more when a page has more than 3 fonts)
# Of each sampled line only a run of words from its middle with about this many letters is read,
# cut at whole pixels and without the recogniser's padding (the 320 px floor gives short tokens
# context, the tail room for a final "."; a run of 8 letters compared on letters and digits needs
# neither): the recogniser's cost grows with the crop's width, and a run of words tells a wrong map
# as well as the whole line does (a full-width line is ~90 letters). Measured over every page of the
# Libtasn1 manual, the shared-mime-info spec and the fixtures, against 12 letters padded and
# resampled: 0.53x the check's CPU, every page's verdict the same, the fixtures' per-font CERs
# within 0.02 (wrong maps 0.33-0.43), clean pages' worst sampled CER 0.013 -> 0.017 (threshold 0.15).
SPAN_LETTERS = 8
FONT_LINES = 2  # at least this many of each font's lines (a ToUnicode map is a font's own)
# A font sampled on fewer letters is judged with the whole sample, not alone (one short line's
# misread letter would be a large CER).
MIN_FONT_LETTERS = 16
# A layer line over images whose invisible glyphs lie this much inside them is a scanner's OCR.
SCAN_LAYER_OVERLAP = 0.5
# Images smaller than this share of the page (bullets, icons, rules) are not searched for text.
MIN_IMAGE_SHARE = 0.005
_SAMPLE_MARGIN = 3  # px around a layer line's box: the recogniser reads tight crops badly


@dataclass(frozen=True)
class PageText:
    """A page's text lines in reading order, the source they came from and why it was chosen."""

    lines: list[TextLine]
    source: Literal["txt", "ocr", "txt+ocr"]
    reason: str
    # The words of the layer lines kept (what a table's cells may take their text from): none of a
    # scanner's invisible layer or of a font whose map disagrees with the page; None: no layer used.
    layer_words: tuple[TextLayerWord, ...] | None = None


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


def _readable(line: TextLayerLine) -> bool:
    return len(_letters(line.text)) >= 4 and line.bbox[3] - line.bbox[1] >= 6


def _spread(lines: list[TextLayerLine], count: int) -> list[TextLayerLine]:
    if count <= 0:
        return []
    if len(lines) <= count:
        return lines
    picks = np.linspace(0, len(lines) - 1, count).round().astype(int)
    return [lines[i] for i in sorted(set(picks.tolist()))]


def _sampled(lines: list[TextLayerLine]) -> list[TextLayerLine]:
    """FONT_LINES readable lines of every font (a line's font: the one most of its glyphs use),
    then more spread over the page up to SAMPLE_LINES in all, in page order."""
    readable = [ln for ln in lines if _readable(ln)]
    picked: set[int] = set()
    for name in dict.fromkeys(ln.font for ln in readable):
        picked |= {id(ln) for ln in _spread([ln for ln in readable if ln.font == name], FONT_LINES)}
    rest = [ln for ln in readable if id(ln) not in picked]
    picked |= {id(ln) for ln in _spread(rest, SAMPLE_LINES - len(picked))}
    return [ln for ln in readable if id(ln) in picked]


def _span(line: TextLayerLine) -> tuple[str, tuple[float, float, float, float]]:
    """A run of the line's words from its middle, about SPAN_LETTERS letters, and its box (the
    whole line when its words have no boxes). The run holds only words with letters or digits, so
    it never stretches over dot leaders (a table of contents' line is mostly dots)."""
    words = line.words
    lettered = [n for n, word in enumerate(words) if _letters(word.text)]
    if not lettered:
        return line.text, line.bbox
    first = last = lettered[len(lettered) // 2]
    letters = len(_letters(words[first].text))

    def has_letters(n: int) -> bool:
        return 0 <= n < len(words) and bool(_letters(words[n].text))

    while letters < SPAN_LETTERS and (has_letters(last + 1) or has_letters(first - 1)):
        if has_letters(last + 1):
            last += 1
            letters += len(_letters(words[last].text))
        if letters < SPAN_LETTERS and has_letters(first - 1):
            first -= 1
            letters += len(_letters(words[first].text))
    chosen = words[first : last + 1]
    box = (
        min(w.bbox[0] for w in chosen),
        min(w.bbox[1] for w in chosen),
        max(w.bbox[2] for w in chosen),
        max(w.bbox[3] for w in chosen),
    )
    return " ".join(w.text for w in chosen), box


def _quad(box: tuple[float, float, float, float], width: int, height: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    left, top = max(0.0, x0 - _SAMPLE_MARGIN), max(0.0, y0 - _SAMPLE_MARGIN)
    right, bottom = min(width - 1.0, x1 + _SAMPLE_MARGIN), min(height - 1.0, y1 + _SAMPLE_MARGIN)
    return np.array([[left, top], [right, top], [right, bottom], [left, bottom]], dtype=np.float32)


def _read_at_boxes(
    engine: OcrEngine,
    image_rgb: np.ndarray,
    boxes: list[tuple[float, float, float, float]],
    padded: bool = True,
) -> list[tuple[str, float]]:
    """What the recogniser reads at each of the layer's own boxes (no detector), in parallel; only
    the crops are converted to BGR, not the page. Each box is widened to whole pixels, so its crop
    is a plain slice of the page, not a resampling (the recogniser resizes it anyway); ``padded``:
    padded as the recogniser pads a line."""
    height, width = image_rgb.shape[:2]

    def read(box: tuple[float, float, float, float]) -> tuple[str, float]:
        quad = _quad(box, width, height)
        x0, y0 = np.floor(quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
        part = imaging.rgb_to_bgr(np.ascontiguousarray(image_rgb[y0 : y1 + 1, x0 : x1 + 1]))
        whole = np.array([[0, 0], [x1 - x0, 0], [x1 - x0, y1 - y0], [0, y1 - y0]], dtype=np.float32)
        return engine.recognizer(crop_quad(part, whole), padded)

    return engine.pool.map(read, boxes)


@dataclass(frozen=True)
class SampleCheck:
    """The layer's sampled lines against what the recogniser reads at their boxes."""

    lines: int  # lines sampled
    cer: float | None  # over every sampled letter (None: nothing readable to compare)
    font_cer: dict[str, float]  # per font sampled on at least MIN_FONT_LETTERS letters

    def bad_fonts(self) -> set[str]:
        """Fonts whose layer disagrees with the image; every font sampled when the whole sample
        disagrees though no single font was sampled on enough letters to tell."""
        bad = {name for name, value in self.font_cer.items() if value > MAX_SAMPLE_CER}
        if not bad and self.cer is not None and self.cer > MAX_SAMPLE_CER:
            return {"*"}
        return bad


def check_sample(engine: OcrEngine, image_rgb: np.ndarray, lines: list[TextLayerLine]) -> SampleCheck:
    """Reads a span of each sampled line (:func:`_sampled`, :func:`_span`) and compares it with the
    layer, per font."""
    sample = _sampled(lines)
    spans = [_span(line) for line in sample]
    reads = _read_at_boxes(engine, image_rgb, [box for _, box in spans], padded=False)
    per_font: dict[str, list[int]] = {}
    edits = total = 0
    for line, (text, _), (read, _) in zip(sample, spans, reads, strict=True):
        truth = _letters(text)
        wrong = edit_distance(_letters(read), truth)
        edits, total = edits + wrong, total + len(truth)
        counts = per_font.setdefault(line.font, [0, 0])
        counts[0] += wrong
        counts[1] += len(truth)
    return SampleCheck(
        lines=len(sample),
        cer=edits / total if total else None,
        font_cer={name: e / t for name, (e, t) in per_font.items() if t >= MIN_FONT_LETTERS},
    )


def _inside_images(line: TextLayerLine, image_boxes: tuple[tuple[float, float, float, float], ...]) -> bool:
    area = max(1.0, (line.bbox[2] - line.bbox[0]) * (line.bbox[3] - line.bbox[1]))
    return sum(intersection(line.bbox, box) for box in image_boxes) / area >= SCAN_LAYER_OVERLAP


def _drawn_lines(
    engine: OcrEngine, image_rgb: np.ndarray, layer: TextLayer, own: list[TextLine], min_confidence: float
) -> list[TextLine]:
    """Lines the detector finds inside the page's images that no layer line covers (text drawn as
    pixels), recognised. Each image is read at native scale, on its own."""
    page_area = image_rgb.shape[0] * image_rgb.shape[1]
    side = engine.detector.config.limit_side_len
    found: list[TextLine] = []
    for image_box in layer.image_boxes:
        if (image_box[2] - image_box[0]) * (image_box[3] - image_box[1]) < MIN_IMAGE_SHARE * page_area:
            continue
        canvas, (dx, dy) = region_canvas(image_rgb, image_box, _SAMPLE_MARGIN, side)
        canvas = imaging.rgb_to_bgr(canvas)
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
    if mode == "txt":
        return PageText(order_lines(layer_lines(layer)), "txt", "mode=txt", _words(layer.lines))
    return _checked(page, layer, engine, read_pixels, min_confidence)


def _checked(
    page: PageImage,
    layer: TextLayer,
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
    # A scanner's OCR layer: invisible glyphs (render mode 3) over the scanned image. It is another
    # engine's reading of these pixels, with that engine's errors; the pixels are read here instead.
    scan_layer = [ln for ln in layer.lines if ln.invisible and _inside_images(ln, layer.image_boxes)]
    candidates = [ln for ln in layer.lines if not (ln.invisible and _inside_images(ln, layer.image_boxes))]
    if not candidates:
        return PageText(
            read_pixels(),
            "ocr",
            f"a searchable scan: the text layer is invisible text (render mode 3) over images covering"
            f" {layer.image_coverage:.0%} of the page, a scanner's OCR and not the document's own"
            " text, so the page image is read by OCR",
        )
    check = check_sample(engine, page.image, candidates)
    bad = check.bad_fonts()
    wrong = [ln for ln in candidates if "*" in bad or bad & set(ln.fonts)]
    if wrong and sum(len(_letters(ln.text)) for ln in wrong) >= 0.5 * sum(
        len(_letters(ln.text)) for ln in candidates
    ):
        return PageText(
            read_pixels(),
            "ocr",
            f"the text layer disagrees with the page image (CER {check.cer or 0:.2f} on {check.lines}"
            f" sampled lines{_fonts_said(check, bad)}; a wrong ToUnicode map or hidden text)",
        )
    wrong_ids = {id(ln) for ln in wrong}
    trusted = [ln for ln in candidates if id(ln) not in wrong_ids]
    reread = _reread(engine, page.image, wrong, min_confidence)
    kept = order_lines([_as_text_line(ln) for ln in trusted] + reread)
    drawn = _drawn_lines(engine, page.image, layer, kept, min_confidence)
    notes = [f"CER {check.cer or 0:.2f} on {check.lines} sampled lines"] if check.cer is not None else []
    if scan_layer:
        notes.append(
            f"{len(scan_layer)} invisible line(s) over images (a scanner's OCR layer) set aside for"
            " the image's own pixels"
        )
    if wrong:
        notes.append(
            f"{len(wrong)} line(s) in {', '.join(sorted(bad))} read by OCR at their boxes (that font's"
            f" layer disagrees with the page image{_fonts_said(check, bad)})"
        )
    if drawn:
        notes.append(
            f"{len(drawn)} line(s) drawn as images ({layer.image_coverage:.0%} of the page is images)"
            " read by OCR"
        )
    if reread or drawn:
        return PageText(
            order_lines(kept + drawn),
            "txt+ocr",
            "text layer checked against the page image; " + "; ".join(notes),
            _words(trusted),
        )
    return PageText(
        kept,
        "txt",
        "the text layer checks out against the page image" + (f" ({'; '.join(notes)})" if notes else ""),
        _words(trusted),
    )


def _words(lines: Iterable[TextLayerLine]) -> tuple[TextLayerWord, ...]:
    return tuple(word for line in lines for word in line.words)


def _fonts_said(check: SampleCheck, bad: set[str]) -> str:
    named = [f"{name} {check.font_cer[name]:.2f}" for name in sorted(bad) if name in check.font_cer]
    return f"; per font: {', '.join(named)}" if named else ""


def _reread(
    engine: OcrEngine, image_rgb: np.ndarray, lines: list[TextLayerLine], min_confidence: float
) -> list[TextLine]:
    """Lines whose font's layer is wrong, read by the recogniser at the layer's own boxes (the
    layer's geometry is right, only its characters are not)."""
    height, width = image_rgb.shape[:2]
    reads = _read_at_boxes(engine, image_rgb, [line.bbox for line in lines])
    return [
        TextLine(text=text, confidence=confidence, polygon=_quad(line.bbox, width, height).tolist())
        for line, (text, confidence) in zip(lines, reads, strict=True)
        if text.strip() and confidence >= min_confidence
    ]
