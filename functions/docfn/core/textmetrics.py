"""Text-fidelity metrics used by benchmarks, the pack accuracy gate and tests (no weights needed)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

_LINE_END_HYPHEN = re.compile(r"(?<=[a-z])-\s*\n\s*(?=[a-z])")


def dehyphenated(text: str) -> str:
    """Words a typesetter broke at a line's end ("argu-" / "ments") made whole again: the break is
    layout, not content, and joining it must not count as an error against a text that keeps it."""
    return _LINE_END_HYPHEN.sub("", text)


def normalise(text: str) -> str:
    """NFKC, all whitespace removed: typeset line breaks and spacing are not recognition errors."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def edit_distance(a: str, b: str) -> int:
    try:
        from rapidfuzz.distance import Levenshtein

        return int(Levenshtein.distance(a, b))
    except ImportError:  # pragma: no cover - rapidfuzz is in the dev extra; keep a pure fallback
        previous = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            current = [i]
            for j, cb in enumerate(b, 1):
                current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
            previous = current
        return previous[-1]


def cer(hypothesis: str, reference: str) -> float:
    """Character error rate of ``hypothesis`` against ``reference`` after :func:`normalise`."""
    ref = normalise(reference)
    hyp = normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(hyp, ref) / len(ref)


def char_f1(hypothesis: str, reference: str) -> float:
    """Order-insensitive character F1 (bag of characters), robust to reading-order differences."""
    hyp = Counter(normalise(hypothesis))
    ref = Counter(normalise(reference))
    overlap = sum((hyp & ref).values())
    if not overlap:
        return 0.0
    precision = overlap / sum(hyp.values())
    recall = overlap / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def missing_share(reference: str, text: str) -> float:
    """The share of ``reference``'s letters and digits (NFKC, counted as a bag) that ``text`` lacks:
    how much of what one reader read another's output lost, blind to order and layout."""
    ref = Counter(c for c in unicodedata.normalize("NFKC", reference) if c.isalnum())
    got = Counter(c for c in unicodedata.normalize("NFKC", text) if c.isalnum())
    total = sum(ref.values())
    return sum((ref - got).values()) / total if total else 0.0
