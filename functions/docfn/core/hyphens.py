"""Hyphens at the ends of a text layer's lines: printed ones (``well-known``) kept, word breaks
(``infra-`` + ``structure``) marked as soft hyphens (U+00AD) so a join drops them.

pdfium reports every hyphen that ends a line before more letters as U+0002 (fpdf_text.h), whether
the typesetter broke a word there or a compound's own hyphen fell at the line end: groff's PDF draws
both with the same glyph, so the PDF itself cannot tell them apart (measured: "well-" + "known" and
"infra-" + "structure" both come back as U+0002). What the page says elsewhere decides: the hyphen
is printed when the word before it is already a compound ("state-of-" + "the-art"), the next line
goes on with a digit or a capital ("COVID-" + "19"), or the page spells the hyphenated word so on
another line ("well-known"); otherwise it is a break, by far the
commoner case in justified text. A PDF that writes U+00AD itself has said it is a break.
"""

from __future__ import annotations

import re

SOFT_HYPHEN = "\u00ad"
# pdfium's mark for a hyphen at a line's end with the word going on on the next line.
LINE_END_HYPHEN = "\x02"
_WORD = re.compile(r"\w+(?:-\w+)*")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.replace(SOFT_HYPHEN, "").replace(LINE_END_HYPHEN, " "))


def _is_printed(before: str, after: str, vocabulary: set[str]) -> bool:
    """Whether the hyphen between ``before`` and ``after`` is part of the word as printed."""
    if "-" in before or not after[:1].islower():  # hyphenation never breaks before "19" or "Word"
        return True
    return f"{before}-{after}".lower() in vocabulary


def resolved(texts: list[str]) -> list[str]:
    """The lines of one page in reading order, each line-end U+0002 turned into a printed ``-`` or
    a soft hyphen (U+00AD); soft hyphens inside a line (never printed) dropped, and a U+0002 inside
    one (a line pdfium broke and this module's caller joined again) printed."""
    vocabulary = {word.lower() for text in texts for word in _words(text)}
    out = []
    for index, text in enumerate(texts):
        marker = text[-1:] if text.endswith((SOFT_HYPHEN, LINE_END_HYPHEN)) else ""
        body = text[: len(text) - len(marker)].replace(SOFT_HYPHEN, "").replace(LINE_END_HYPHEN, "-")
        if marker == LINE_END_HYPHEN:
            before = (_words(body) or [""])[-1] if body[-1:].isalnum() else ""
            following = _words(texts[index + 1]) if index + 1 < len(texts) else []
            if not following or not before or _is_printed(before, following[0], vocabulary):
                marker = "-"
            else:
                marker = SOFT_HYPHEN
        out.append(body + marker)
    return out
