"""Joining OCR lines into block text, heading levels and list detection."""

from __future__ import annotations

import itertools
import re
import statistics
import unicodedata
from typing import Any

from ...core.hyphens import SOFT_HYPHEN
from ..ocr.engine import TextLine

_SECTION_NUMBER = re.compile(r"^\s*((?:\d+|[A-Z])(?:\.\d+)*)\.?\s+\S")
_BULLET = re.compile(r"^\s*(?:[•·▪◦‣\-–*]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+")
_SYMBOL_BULLET = re.compile(r"^\s*[•·▪◦‣\-–*]\s+")
# Marks of a line of code (or of TeX source): a backslash command, braces, a statement's end,
# an assignment or arrow, a preprocessor line, a comment, a call.
_CODE_LINE = re.compile(r"\\[A-Za-z]+|[{}]|;\s*$|::=|:=|->|=>|==|^\s*#\w|//|/\*|^\s*%|\w\(\S*\)")
# Share of a block's lines that must look like code for the block to be code.
CODE_SHARE = 0.3
# A title is a heading only when it reads like one: not a sentence or a label ending in
# punctuation, not a paragraph (measured on libtasn1: "Consider this definition:" was a title).
_SENTENCE_END = (".", ":", ";", ",")
MAX_HEADING_CHARS = 120
MAX_HEADING_LINES = 3


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in {"W", "F"}


def join_lines(lines: list[TextLine]) -> str:
    """Lines of one block in reading order -> one paragraph.

    CJK lines join without a space. Hyphens as printed: a soft hyphen (U+00AD, a word broken at the
    line end) is dropped and the word joined whole; a text layer's "-" ending a line after a letter is
    printed ("well-" + "known" -> "well-known"); an OCR'd line's "-" before a lowercase word, which
    may be either, is read as a break (the commoner case).
    """
    out = ""
    exact = False  # whether the line joined last came from a text layer
    for line in lines:
        text = line.text.strip()
        if not text:
            continue
        if not out:
            out = text
        elif out.endswith(SOFT_HYPHEN):
            out = out[:-1] + text
        elif out.endswith("-") and exact and out[-2:-1].isalnum():  # a dash set off by spaces is no hyphen
            out += text
        elif out.endswith("-") and text[:1].islower():
            out = out[:-1] + text
        elif _is_wide(out[-1]) or _is_wide(text[0]):
            out += text
        else:
            out += " " + text
        exact = line.exact
    # A break at the block's end joins nothing: the hyphen stays, as printed.
    return out[:-1] + "-" if out.endswith(SOFT_HYPHEN) else out


def is_heading(text: str, lines: int) -> bool:
    """Whether a region the layout model calls a title reads as a heading."""
    if _SECTION_NUMBER.match(text) and len(text) < MAX_HEADING_CHARS:
        return True
    return len(text) <= MAX_HEADING_CHARS and lines <= MAX_HEADING_LINES and not text.endswith(_SENTENCE_END)


def looks_like_code(lines: list[TextLine]) -> bool:
    """Whether enough of a block's lines carry marks of code (see ``_CODE_LINE``)."""
    if not lines:
        return False
    return sum(1 for line in lines if _CODE_LINE.search(line.text)) >= CODE_SHARE * len(lines)


def heading_level(text: str, line_height: float, body_height: float) -> int:
    """1-based level: from the section number's depth ("3.1.2" -> 3) when there is one, else
    from the type size against the page's body text."""
    match = _SECTION_NUMBER.match(text)
    if match and len(text) < 120:
        return min(6, match.group(1).count(".") + 1)
    if body_height and line_height >= 1.5 * body_height:
        return 1
    return 2


def list_items(lines: list[TextLine]) -> list[str] | None:
    """Items when most lines of the block start with a bullet or an item number, else None."""
    starts = [i for i, line in enumerate(lines) if _BULLET.match(line.text)]
    if len(starts) < 2 or len(starts) < len(lines) / 2 or starts[0] != 0:
        return None
    bounds = [*starts, len(lines)]
    return [join_lines(lines[a:b]) for a, b in itertools.pairwise(bounds)]


Segment = tuple[str, list[TextLine]]  # ("text" | "list" | "code", its lines)
# Code inside a text region is indented at least this many line heights past the region's left
# edge (texinfo's @example: 2.5; a paragraph's first-line indent: about 1).
CODE_INDENT = 1.5
# A blank this many line heights above a line starts a new paragraph: it continues no list item
# or code (groff: lines 0.2 apart, paragraphs 0.56, displays 0.8-1.1).
PARAGRAPH_GAP = 0.4


def text_segments(lines: list[TextLine]) -> list[Segment]:
    """A text region's lines cut into paragraphs, lists and code (the layout model often boxes a
    paragraph, the example under it and a list after it as one region). Code: indented lines with
    marks of code (see ``_CODE_LINE``), two or more; a list: lines from a bullet on, with the
    indented lines continuing an item."""
    if len(lines) < 2:
        return [("text", lines)]
    height = statistics.median(ln.bbox[3] - ln.bbox[1] for ln in lines)
    left = min(ln.bbox[0] for ln in lines)
    segments: list[Segment] = []
    for line in lines:
        indent = line.bbox[0] - left
        kind = (
            "list"
            if _BULLET.match(line.text)
            else "code"
            if _CODE_LINE.search(line.text) and indent >= CODE_INDENT * height
            else "text"
        )
        if segments and kind == "text":
            last_kind, last = segments[-1]
            item_indent = last[0].bbox[0] - left
            adjoining = line.bbox[1] - last[-1].bbox[3] <= PARAGRAPH_GAP * height
            continues = adjoining and (
                (last_kind == "list" and indent > item_indent + 0.5 * height)
                or (last_kind == "code" and indent >= CODE_INDENT * height)
            )
            kind = last_kind if continues else kind
        if segments and segments[-1][0] == kind:
            segments[-1][1].append(line)
        else:
            segments.append((kind, [line]))
    return _merged(segments)


def _merged(segments: list[Segment]) -> list[Segment]:
    """One-line code runs are read as text; neighbouring segments of one kind are joined."""
    out: list[Segment] = []
    for kind, lines in segments:
        kind = "text" if kind == "code" and len(lines) < 2 else kind
        if out and out[-1][0] == kind:
            out[-1][1].extend(lines)
        else:
            out.append((kind, list(lines)))
    return out


def bullet_stripped(item: str) -> str:
    """A list item without its bullet symbol (item numbers are kept: they carry meaning)."""
    return _SYMBOL_BULLET.sub("", item, count=1)


def joined_list_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive paragraphs that each start with a bullet or item number (the layout model often
    boxes each item on its own) joined into one list block; a run of one stays a paragraph."""
    out: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []

    def close() -> None:
        if len(run) >= 2:
            out.append({**run[0], "type": "list", "sub_type": "text", "list_items": [b["text"] for b in run]})
            out[-1].pop("text", None)
            out[-1]["bbox"] = [
                min(b["bbox"][0] for b in run),
                min(b["bbox"][1] for b in run),
                max(b["bbox"][2] for b in run),
                max(b["bbox"][3] for b in run),
            ]
        else:
            out.extend(run)
        run.clear()

    for block in blocks:
        if block["type"] == "text" and not block.get("text_level") and _BULLET.match(block["text"]):
            run.append(block)
            continue
        close()
        out.append(block)
    close()
    return out
