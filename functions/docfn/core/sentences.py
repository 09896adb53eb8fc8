"""Sentences and tokens of English and Chinese text, with their offsets: what summaries rank and
retrieval chunks are cut along.

Sentence ends are found by rule, not by a trained splitter (nltk's punkt data cannot be fetched in a
function, and CJK needs none): ``。！？`` (and their fullwidth kin) end a Chinese sentence wherever they
stand; ``. ! ?`` end an English one when whitespace and a capital, digit or opening quote follow.
Every sentence is a ``[start, end)`` span of its text, so a caller can always point back at the source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# CJK ideographs (BMP blocks and extension A), kana and Hangul: each counts as one token.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_CJK_CHAR = re.compile(f"[{_CJK}]")
# A token: one CJK character, or a run of other letters/digits (a word).
_TOKEN = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+")
# English: terminal punctuation (closing quotes/brackets kept with it), then whitespace before an
# upper-case letter, a digit or an opening quote/bracket. Chinese: a full stop mark ends a sentence
# wherever it stands (closing quotes kept with it).
_END = re.compile(
    r"[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[A-Z0-9])"
    + r"|[。！？；]+[”’」』）)]*"
    + r"|\n\s*\n"
    + r"|\n(?=[ \t]*(?:[-*+•]|\d{1,2}[.)])[ \t])"  # a line that starts a list item
)
# Abbreviations whose full stop does not end an English sentence.
_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "etc", "cf", "vs", "fig", "figs", "eq", "eqs", "no", "dr", "mr", "mrs"}
)
_ABBREVIATIONS |= {"ms", "prof", "sec", "vol", "al", "ch", "pp", "p", "approx", "resp", "st"}


@dataclass(frozen=True)
class Span:
    """``text[start:end]`` of the text it was cut from, stripped of surrounding whitespace."""

    start: int
    end: int
    text: str


def sentence_spans(text: str) -> list[Span]:
    """The sentences of ``text``, in order; blank stretches between them belong to none."""
    spans: list[Span] = []
    start = 0
    for match in _END.finditer(text):
        end = match.end()
        if match.group().startswith(".") and _abbreviation_before(text, match.start()):
            continue
        _add(spans, text, start, end)
        start = end
    _add(spans, text, start, len(text))
    return spans


def _abbreviation_before(text: str, dot: int) -> bool:
    word = re.search(r"([A-Za-z.]+)$", text[max(0, dot - 12) : dot])
    return bool(word) and word.group(1).lower().lstrip(".") in _ABBREVIATIONS


def _add(spans: list[Span], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped or not _TOKEN.search(stripped):
        return  # whitespace or bare punctuation: no sentence
    lead = len(piece) - len(piece.lstrip())
    begin = start + lead
    spans.append(Span(begin, begin + len(stripped), stripped))


def tokens(text: str) -> list[str]:
    """Words and CJK characters: the unit of chunk sizes (close to what LLM tokenisers count for
    Chinese, and within a small factor for English)."""
    return _TOKEN.findall(text)


def token_count(text: str) -> int:
    return sum(1 for _ in _TOKEN.finditer(text))


def token_offsets(text: str) -> list[int]:
    """The start offset of each token of ``text``."""
    return [match.start() for match in _TOKEN.finditer(text)]


def detect_language(text: str) -> str:
    """``zh`` when CJK characters are at least a fifth of the letters, else ``en``: the two languages
    the summariser knows; a script count needs no model and cannot be fooled by short inputs."""
    cjk = len(_CJK_CHAR.findall(text))
    letters = sum(1 for char in text if char.isalpha())
    return "zh" if letters and cjk / letters >= 0.2 else "en"
