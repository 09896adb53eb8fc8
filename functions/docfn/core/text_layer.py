"""A PDF page's own text layer (characters and boxes from pdfium), in the rendered page's pixels.

What is read here is data, not a verdict: the characters grouped into lines (pdfium's own line
breaks, split again at wide horizontal gaps such as table columns) with each line's words and their
boxes (table cells are filled from them), line-end hyphens told apart (``hyphens``: printed, or a
word break ending the line in U+00AD), how many characters are suspect (unmapped glyphs,
replacement or private-use code points, control characters: what a missing or broken ToUnicode map
leaves), each line's fonts (a ToUnicode map belongs to a font) and whether it is drawn invisibly
(render mode 3: a scanner's OCR layer over its image), and how much of the page image objects cover
(text drawn as pictures, scans). Whether to trust it is decided above, where the page image can be
read to check it.
"""

from __future__ import annotations

import ctypes
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .hyphens import resolved

Box = tuple[float, float, float, float]

# A gap wider than this many font sizes between two characters of one pdfium line splits it:
# table cells and column gutters, which a reader (and the OCR detector) keep apart.
_GAP_IN_FONT_SIZES = 1.6
_JOIN_LOOKBACK = 8
_SUSPECT_CATEGORIES = frozenset({"Co", "Cs", "Cn", "Cc"})
_UNMAPPED = frozenset({0, 0xFFFD, 0xFFFE, 0xFFFF})
_WHITESPACE_CONTROLS = frozenset("\t\n\r\x0b\x0c")
# pdfium reports a hyphen at a line's end before the rest of a word as U+0002 (fpdf_text.h): kept
# as that mark until ``hyphens.resolved`` decides whether it is printed or a break.
_PDFIUM_LINE_END_HYPHEN = 0x02
_HYPHEN = ord("-")
_INVISIBLE = 3  # FPDF_TEXTRENDERMODE_INVISIBLE: neither filled nor stroked (searchable scans' OCR)


@dataclass(frozen=True)
class TextLayerWord:
    """One word of a line (characters between spaces) and its box in page pixels: what a table
    cell's text is gathered from."""

    text: str
    bbox: Box


@dataclass(frozen=True)
class TextLayerLine:
    """One line of the text layer: its text, its box (x0, y0, x1, y1) in page pixels, its words,
    the fonts its glyphs are drawn in (most glyphs first) and whether it is drawn invisibly."""

    text: str
    bbox: Box
    words: tuple[TextLayerWord, ...] = ()
    fonts: tuple[str, ...] = ()
    invisible: bool = False

    @property
    def font(self) -> str:
        """The font most of the line's glyphs are drawn in."""
        return self.fonts[0] if self.fonts else ""


@dataclass(frozen=True)
class TextLayer:
    """A page's text layer as read, with the measurements that say whether it can be trusted."""

    lines: tuple[TextLayerLine, ...]
    chars: int  # characters that are not whitespace
    suspect_chars: int  # of those: unmapped, replacement, private-use, control, unassigned
    image_boxes: tuple[Box, ...]  # where image objects are drawn (text may be drawn in them)
    image_coverage: float  # share of the page's area under image objects (0-1)

    @property
    def suspect_share(self) -> float:
        return self.suspect_chars / self.chars if self.chars else 0.0


def is_suspect(code: int) -> bool:
    """A code point no correct ToUnicode map produces for printed text."""
    if code in _UNMAPPED or code > 0x10FFFF:
        return True
    char = chr(code)
    return unicodedata.category(char) in _SUSPECT_CATEGORIES and char not in _WHITESPACE_CONTROLS


class _PageToPixels:
    """PDF user space -> rendered pixels, rotation and crop box included: pdfium's own
    ``FPDF_PageToDevice`` (integer output) sampled at three points on a 64x finer grid, as an affine."""

    _FINE = 64

    def __init__(self, raw_module: Any, page: Any, width_px: int, height_px: int) -> None:
        fine_w, fine_h = width_px * self._FINE, height_px * self._FINE
        out_x, out_y = ctypes.c_int(), ctypes.c_int()

        def device(x: float, y: float) -> tuple[float, float]:
            raw_module.FPDF_PageToDevice(page, 0, 0, fine_w, fine_h, 0, x, y, out_x, out_y)
            return out_x.value / self._FINE, out_y.value / self._FINE

        origin, along_x, along_y = device(0, 0), device(1000, 0), device(0, 1000)
        self.matrix = np.array(
            [
                [(along_x[0] - origin[0]) / 1000, (along_y[0] - origin[0]) / 1000, origin[0]],
                [(along_x[1] - origin[1]) / 1000, (along_y[1] - origin[1]) / 1000, origin[1]],
            ]
        )

        # The affine's six numbers as floats: a box is four corners, mapped in plain arithmetic (a
        # numpy product per glyph cost more than the rest of reading the layer).
        (self._a, self._b, self._c), (self._d, self._e, self._f) = self.matrix.tolist()

    def box(self, left: float, bottom: float, right: float, top: float) -> Box:
        a, b, c, d, e, f = self._a, self._b, self._c, self._d, self._e, self._f
        xs = (
            a * left + b * bottom + c,
            a * right + b * top + c,
            a * left + b * top + c,
            a * right + b * bottom + c,
        )
        ys = (
            d * left + e * bottom + f,
            d * right + e * top + f,
            d * left + e * top + f,
            d * right + e * bottom + f,
        )
        return (min(xs), min(ys), max(xs), max(ys))


def _image_boxes(raw_module: Any, page: Any, to_pixels: _PageToPixels, size: tuple[int, int]) -> list[Box]:
    """Boxes of the page's image objects (top level and inside forms), clipped to the page."""
    width, height = size
    boxes = []
    for obj in page.get_objects(filter=(raw_module.FPDF_PAGEOBJ_IMAGE,), max_depth=8):
        x0, y0, x1, y1 = to_pixels.box(*obj.get_bounds())
        x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)
        if x1 > x0 and y1 > y0:
            boxes.append((x0, y0, x1, y1))
    return boxes


def _coverage(boxes: list[Box], size: tuple[int, int]) -> float:
    """Share of the page under ``boxes``, overlaps counted once (on an 8-px grid: plenty)."""
    width, height = size
    mask = np.zeros((max(1, height // 8), max(1, width // 8)), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[int(y0) // 8 : int(np.ceil(y1)) // 8 + 1, int(x0) // 8 : int(np.ceil(x1)) // 8 + 1] = True
    return float(mask.mean())


def read_text_layer(page: Any, size: tuple[int, int]) -> TextLayer:
    """The text layer of a pypdfium2 ``PdfPage`` rendered at ``size`` (width, height) pixels."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_raw

    to_pixels = _PageToPixels(pdfium_raw, page, *size)
    try:
        images = _image_boxes(pdfium_raw, page, to_pixels, size)
        textpage = page.get_textpage()
    except pdfium.PdfiumError:  # an unreadable text layer is read as none: the page gets OCR'd
        return TextLayer(lines=(), chars=0, suspect_chars=0, image_boxes=(), image_coverage=0.0)
    try:
        lines, chars, suspect = _lines(pdfium_raw, textpage, to_pixels, size)
    finally:
        textpage.close()
    return TextLayer(
        lines=tuple(lines),
        chars=chars,
        suspect_chars=suspect,
        image_boxes=tuple(images),
        image_coverage=_coverage(images, size),
    )


@dataclass
class _Run:
    """Characters of one line in PDF space: boxes (left, bottom, right, top) in points."""

    chars: list[tuple[str, Box]]
    font: float  # the last glyph's font size, points
    invisible: bool = False
    fonts: Counter[str] = field(default_factory=Counter)  # glyphs per font name

    @property
    def glyphs(self) -> list[Box]:
        return [b for c, b in self.chars if not c.isspace()]

    @property
    def first_glyph(self) -> Box:
        return next(b for c, b in self.chars if not c.isspace())

    @property
    def last_glyph(self) -> Box | None:
        return next((b for c, b in reversed(self.chars) if not c.isspace()), None)

    def continues(self, other: _Run) -> bool:
        """Whether ``other`` goes on where this run stops."""
        last = self.last_glyph
        return last is not None and _follows(last, other.first_glyph, self.font)


def _follows(last: Box, first: Box, font: float) -> bool:
    """Whether glyph box ``first`` goes on after ``last`` in one line: same row, just right of it."""
    overlap = min(last[3], first[3]) - max(last[1], first[1])
    same_row = overlap > 0.5 * min(last[3] - last[1], first[3] - first[1])
    # Not behind the last glyph's left edge: the characters of a ligature ("fi") share its box.
    forward = first[0] >= last[0] - 0.2 * font
    return same_row and forward and first[0] - last[2] <= _GAP_IN_FONT_SIZES * font


class _Styles:
    """Per character: its font's name and whether it is drawn invisibly (cached per text object)."""

    def __init__(self, raw_module: Any, textpage: Any) -> None:
        self.raw = raw_module
        self.textpage = textpage  # pdfium's handle (``PdfTextPage.raw``)
        self.buffer = ctypes.create_string_buffer(128)
        self.flags = ctypes.c_int()
        self.style_of: dict[int, tuple[str, bool, float]] = {}
        # The text object's address, as a dict key, without a ctypes.cast per character.
        self.get_object = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)(
            ctypes.cast(raw_module.FPDFText_GetTextObject, ctypes.c_void_p).value
        )
        self.handle = ctypes.cast(textpage, ctypes.c_void_p)

    def font(self, index: int) -> str:
        size = self.raw.FPDFText_GetFontInfo(self.textpage, index, self.buffer, len(self.buffer), self.flags)
        return self.buffer.raw[: size - 1].decode("utf-8", "replace") if 0 < size <= len(self.buffer) else ""

    def style(self, index: int) -> tuple[str, bool, float]:
        """The character's font name, whether it is invisible and its font size: one text object
        draws its glyphs in one font, one size and one render mode, so they are read once per
        object."""
        key = self.get_object(self.handle, index)
        if not key:
            return self.font(index), False, self.raw.FPDFText_GetFontSize(self.textpage, index)
        known = self.style_of.get(key)
        if known is None:
            obj = self.raw.FPDFText_GetTextObject(self.textpage, index)
            known = self.style_of[key] = (
                self.font(index),
                self.raw.FPDFTextObj_GetTextRenderMode(obj) == _INVISIBLE,
                self.raw.FPDFText_GetFontSize(self.textpage, index),
            )
        return known


def _runs(raw_module: Any, textpage: Any) -> tuple[list[_Run], int, int]:
    """pdfium's characters cut into runs at its line breaks, row changes, wide gaps and where the
    text turns visible or invisible. The loop runs once per character (~2,000 on a page of
    prose), so it calls pdfium's functions on the raw handle, one box struct reused, and tracks
    the run's last glyph itself rather than asking the run."""
    runs: list[_Run] = []
    chars = suspect = 0
    current = _Run([], 0.0)
    last: Box | None = None  # the current run's last glyph (not a space)
    handle = textpage.raw
    styles = _Styles(raw_module, handle)
    get_unicode = raw_module.FPDFText_GetUnicode
    get_box, rect = raw_module.FPDFText_GetLooseCharBox, raw_module.FS_RECTF()
    rect_ref = ctypes.byref(rect)
    suspect_of: dict[int, bool] = {}

    def cut() -> None:
        nonlocal current, last
        if last is not None:
            runs.append(current)
        current, last = _Run([], 0.0), None

    for index in range(textpage.count_chars()):
        code = get_unicode(handle, index)
        char = chr(code) if code <= 0x10FFFF else "\ufffd"
        code = _HYPHEN if code == _PDFIUM_LINE_END_HYPHEN else code  # a hyphen, not a control
        if char in "\r\n":
            cut()
            continue
        if not get_box(handle, index, rect_ref):  # a character without geometry cannot be placed
            continue
        box = (rect.left, rect.bottom, rect.right, rect.top)
        if char.isspace():
            current.chars.append((" ", box))
            continue
        chars += 1
        bad = suspect_of.get(code)
        if bad is None:
            bad = suspect_of[code] = is_suspect(code)
        suspect += bad
        font_name, invisible, size = styles.style(index)
        font = size or (box[3] - box[1])
        if last is not None and (
            invisible != current.invisible or not _follows(last, box, max(font, current.font))
        ):
            cut()
        current.chars.append((char, box))
        last = box
        current.font = font
        current.invisible = invisible
        current.fonts[font_name] += 1
    cut()
    return runs, chars, suspect


def _joined(runs: list[_Run]) -> list[_Run]:
    """Runs that one line was cut into (pdfium breaks lines of rotated pages mid-word) joined again."""
    joined: list[_Run] = []
    for run in runs:
        # The run it continues is among the last few (a page of table cells stays linear).
        host = next(
            (
                j
                for j in reversed(joined[-_JOIN_LOOKBACK:])
                if j.invisible == run.invisible and j.continues(run)
            ),
            None,
        )
        if host is None:
            joined.append(run)
            continue
        host_last = host.last_glyph
        assert host_last is not None  # a run is kept only with a glyph
        if run.first_glyph[0] - host_last[2] > 0.15 * host.font and host.chars[-1][0] != " ":
            host.chars.append((" ", host_last))
        host.chars.extend(run.chars)
        host.font = run.font
        host.fonts.update(run.fonts)
    return joined


def _lines(
    raw_module: Any, textpage: Any, to_pixels: _PageToPixels, size: tuple[int, int]
) -> tuple[list[TextLayerLine], int, int]:
    """Characters grouped into lines in PDF space (where text runs left to right whatever the page's
    rotation), each line's box then mapped to pixels; lines drawn off the page are left out."""
    width, height = size
    runs, chars, suspect = _runs(raw_module, textpage)
    joined = _joined(runs)
    texts = resolved([" ".join("".join(c for c, _ in run.chars).split()) for run in joined])
    lines = []
    for run, text in zip(joined, texts, strict=True):
        box = to_pixels.box(*_enclosing(run.glyphs))
        if box[2] > 0 and box[3] > 0 and box[0] < width and box[1] < height:
            lines.append(
                TextLayerLine(
                    text=text,
                    bbox=box,
                    words=_words(run, text, to_pixels),
                    fonts=tuple(name for name, _ in run.fonts.most_common()),
                    invisible=run.invisible,
                )
            )
    return lines, chars, suspect


def _enclosing(boxes: list[Box]) -> Box:
    lefts, bottoms, rights, tops = zip(*boxes, strict=True)
    return (min(lefts), min(bottoms), max(rights), max(tops))


def _words(run: _Run, text: str, to_pixels: _PageToPixels) -> tuple[TextLayerWord, ...]:
    """The line's words with their boxes: glyph boxes grouped at the run's spaces, each group named
    by the matching word of the line's final ``text`` (hyphens resolved, soft hyphens dropped)."""
    groups: list[list[Box]] = [[]]
    for char, box in run.chars:
        if char.isspace():
            groups.append([])
        else:
            groups[-1].append(box)
    boxes = [to_pixels.box(*_enclosing(group)) for group in groups if group]
    names = text.split()
    if len(names) != len(boxes):  # a word that was only a dropped soft hyphen: no boxes to trust
        return ()
    return tuple(TextLayerWord(name, box) for name, box in zip(names, boxes, strict=True))
