"""The extractive engine: the document's own sentences ranked by LexRank (sumy), picked so the summary
covers several sections, in reading order.

sumy's own tokenisers want nltk's punkt data (not in a function image, and no help for Chinese): it
gets :class:`Tokenizer` instead, which splits sentences with :mod:`docfn.core.sentences` and words
with a regular expression (English) or rjieba (Chinese, jieba's Rust port). Long documents are ranked
in parts of at most :data:`PART_SENTENCES` sentences (LexRank's similarity matrix grows with the
square of the count), then the parts' best sentences are ranked together: map-reduce, memory bounded
by one part.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable
from functools import cache

import numpy

from ...core.sentences import sentence_spans
from .source import Sentence

ENGINE = "extractive-lexrank"
PART_SENTENCES = 300
_WORD = re.compile(r"[^\W_]+")
_SUMY_LANGUAGE = {"en": "english", "zh": "chinese"}


@cache
def segmenter():  # type: ignore[no-untyped-def]
    """Chinese word segmentation: rjieba, jieba's algorithm and dictionary in Rust (jieba-rs), a
    wheel with its dictionary built in (jieba itself ships only an sdist, which the function
    images' --only-binary builds refuse). Imported on the first Chinese text only."""
    import rjieba

    return rjieba


class Tokenizer:
    """sumy's tokenizer interface (``to_sentences``, ``to_words``) for English and Chinese."""

    def __init__(self, language: str) -> None:
        self.language = language

    def to_sentences(self, paragraph: str) -> tuple[str, ...]:
        return tuple(span.text for span in sentence_spans(paragraph))

    def to_words(self, sentence: str) -> tuple[str, ...]:
        if self.language == "zh":
            return tuple(word for word in segmenter().cut(sentence) if _WORD.search(word))
        return tuple(_WORD.findall(sentence))


@cache
def _summarizer(language: str):  # type: ignore[no-untyped-def]
    """LexRank answering with its ratings: sumy hands them only to its selection step, which this
    replaces (the selection here balances sections, see :func:`pick`)."""
    from sumy.summarizers.lex_rank import LexRankSummarizer
    from sumy.utils import get_stop_words

    class Ratings(LexRankSummarizer):  # type: ignore[misc]
        @staticmethod
        def _get_best_sentences(sentences, count, rating, *args, **kwargs):  # type: ignore[no-untyped-def]
            return rating

    summarizer = Ratings()
    summarizer.stop_words = get_stop_words(_SUMY_LANGUAGE[language])
    return summarizer


def rate(sentences: list[Sentence], language: str) -> list[float]:
    """LexRank centrality of each sentence among ``sentences``."""
    from sumy.models.dom import ObjectDocumentModel, Paragraph
    from sumy.models.dom import Sentence as SumySentence

    tokenizer = Tokenizer(language)
    wrapped = [SumySentence(s.text, tokenizer) for s in sentences]
    # A graph without edges (two unrelated sentences) has no centrality: sumy's power method divides
    # by a zero norm there. Such sentences rate 0 (the pick then goes by section and order).
    with numpy.errstate(invalid="ignore", divide="ignore"):
        ratings = _summarizer(language)(ObjectDocumentModel([Paragraph(wrapped)]), len(wrapped)) or {}
    scores = [float(ratings.get(s, 0.0)) for s in wrapped]
    return [0.0 if math.isnan(score) else score for score in scores]


def pick(sentences: list[Sentence], scores: list[float], count: int | None, chars: int | None) -> list[int]:
    """Indices of the summary's sentences, in reading order: sections take turns, best section first,
    each giving its best sentence not yet taken, until ``count`` sentences or ``chars`` characters."""
    by_section: dict[int, list[int]] = defaultdict(list)
    for index, sentence in enumerate(sentences):
        by_section[sentence.section].append(index)
    queues = sorted(
        (sorted(members, key=lambda i: -scores[i]) for members in by_section.values()),
        key=lambda members: -scores[members[0]],
    )
    chosen: list[int] = []
    used = 0
    for turn in range(max((len(q) for q in queues), default=0)):
        for queue in queues:
            if turn >= len(queue):
                continue
            index = queue[turn]
            length = len(sentences[index].text) + (1 if chosen else 0)
            if chars is not None and chosen and used + length > chars:
                continue  # too long for what is left; a shorter one may still fit
            chosen.append(index)
            used += length
            if count is not None and len(chosen) >= count:
                return sorted(chosen)
    return sorted(chosen)


def summarize(
    sentences: list[Sentence],
    language: str,
    count: int | None,
    chars: int | None,
    progress: Callable[[int, int], None] | None = None,
) -> list[int]:
    """The chosen sentences' indices: one ranking when the text is short, else map-reduce."""
    if len(sentences) <= PART_SENTENCES:
        return pick(sentences, rate(sentences, language), count, chars)
    parts = [
        list(range(i, min(i + PART_SENTENCES, len(sentences))))
        for i in range(0, len(sentences), PART_SENTENCES)
    ]
    # Each part keeps enough candidates for any section balance the final pick may want.
    keep = max(2 * (count or max(1, (chars or 0) // 80)), 20)
    candidates: list[int] = []
    for done, part in enumerate(parts, start=1):
        members = [sentences[i] for i in part]
        chosen = pick(members, rate(members, language), keep, None)
        candidates.extend(part[i] for i in chosen)
        if progress is not None:
            progress(done, len(parts) + 1)
    finalists = [sentences[i] for i in candidates]
    chosen = pick(finalists, rate(finalists, language), count, chars)
    if progress is not None:
        progress(len(parts) + 1, len(parts) + 1)
    return [candidates[i] for i in chosen]
