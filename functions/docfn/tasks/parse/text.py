"""Joining OCR lines into block text, heading levels and list detection."""

from __future__ import annotations

import itertools
import re
import unicodedata

from ..ocr.engine import TextLine

_SECTION_NUMBER = re.compile(r"^\s*((?:\d+|[A-Z])(?:\.\d+)*)\.?\s+\S")
_BULLET = re.compile(r"^\s*(?:[•·▪◦‣\-–*]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+")


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in {"W", "F"}


def join_lines(lines: list[TextLine]) -> str:
    """Lines of one block in reading order -> one paragraph.

    CJK lines join without a space; a Latin line ending in a hyphen joins the next word whole.
    """
    out = ""
    for line in lines:
        text = line.text.strip()
        if not text:
            continue
        if not out:
            out = text
        elif out.endswith("-") and text[:1].islower():
            out = out[:-1] + text
        elif _is_wide(out[-1]) or _is_wide(text[0]):
            out += text
        else:
            out += " " + text
    return out


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
