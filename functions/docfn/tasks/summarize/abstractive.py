"""Abstractive summaries: a writer (LLM endpoint or VLM) over the text, map-reduce when it is long.

The text is cut at sentence ends into parts of at most ``part_tokens`` tokens; each part is summarised
(map), then the parts' summaries together (reduce, again in parts while they are still too long). One
prompt at a time is held: memory and prompt length stay bounded whatever the document's length.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from ...core.sentences import sentence_spans, token_count, tokens
from .source import Sentence
from .writers import WriteMany, Writer

_LANGUAGE_NAMES = {"en": "English", "zh": "Chinese (简体中文)"}


def parts(texts: list[str], part_tokens: int) -> Iterator[str]:
    """``texts`` (sentences) joined into parts of at most ``part_tokens`` tokens each."""
    current: list[str] = []
    size = 0
    for text in texts:
        count = token_count(text)
        if current and size + count > part_tokens:
            yield "\n".join(current)
            current, size = [], 0
        current.append(text)
        size += count
    if current:
        yield "\n".join(current)


def prompt(text: str, language: str, count: int | None, chars: int | None) -> str:
    length = f"at most {chars} characters" if chars is not None else f"at most {count} sentences"
    return (
        f"Summarise the following text in {_LANGUAGE_NAMES[language]}, in {length}."
        " Keep to what the text says. Answer with the summary only.\n\n" + text
    )


def summarize(
    sentences: list[Sentence],
    write: Writer,
    *,
    language: str,
    count: int | None,
    chars: int | None,
    max_tokens: int,
    part_tokens: int,
    deadline: float | None,
    progress: Callable[[int, int], None] | None = None,
    write_many: WriteMany | None = None,
) -> tuple[str, int]:
    """The summary and how many parts the text was written in (1: no map-reduce). ``write_many``
    writes the map step's parts together (None: one by one with ``write``)."""
    pieces = list(parts([s.text for s in sentences], part_tokens))
    total, done, first = len(pieces), 0, len(pieces)
    while True:
        if len(pieces) == 1:
            answer = write(prompt(pieces[0], language, count, chars), max_tokens, deadline)
            if progress is not None:
                progress(total, total)
            return trimmed(answer, count, chars), first
        total += 1  # one more step at least: the summaries' own summary
        asks = [prompt(piece, language, None, max(200, part_tokens // 4)) for piece in pieces]
        if write_many is not None:  # the parts together: the VLM decodes them in one batch
            notes = write_many(asks, max_tokens, deadline)
            done += len(asks)
            if progress is not None:
                progress(done, total)
        else:
            notes = []
            for ask in asks:
                notes.append(write(ask, max_tokens, deadline))
                done += 1
                if progress is not None:
                    progress(done, total)
        pieces = list(parts(notes, part_tokens))
        total += len(pieces) - 1


def trimmed(text: str, count: int | None, chars: int | None) -> str:
    """The answer held to the requested length: whole sentences while they fit (models overshoot)."""
    spans = sentence_spans(text)
    if not spans:
        return text.strip()
    if chars is None:
        return text[spans[0].start : spans[: count or len(spans)][-1].end]
    end = spans[0].end
    for span in spans[1:]:
        if span.end - spans[0].start > chars:
            break
        end = span.end
    return text[spans[0].start : end][:chars]


def grounding(summary: str, sentences: list[Sentence], limit: int) -> list[int]:
    """The source sentences an abstractive summary rests on: those sharing the most of their words
    with it (a share of the sentence's own words), best ``limit``, in reading order."""
    said = {t.lower() for t in tokens(summary)}
    if not said:
        return []
    scored = []
    for index, sentence in enumerate(sentences):
        words = {t.lower() for t in tokens(sentence.text) if not re.fullmatch(r"\d+", t)}
        if words:
            scored.append((len(words & said) / len(words), index))
    best = [index for share, index in sorted(scored, reverse=True)[:limit] if share > 0]
    return sorted(best)
