"""Retrieval chunks of a parse result: section-aware pieces of its Markdown of about ``size`` tokens,
each starting with ``overlap`` tokens of the previous one, with the pages, boxes and heading path
they come from.

Chunks are cut from the Markdown itself (``start``/``end`` offsets into it): together, less their
overlaps, they are exactly the Markdown. A heading always opens a new chunk, so no chunk mixes two
sections; a chunk ends at a sentence end where it can (a sentence longer than ``size`` is cut at a
token). No chunk is ever longer than ``size`` tokens: the overlap shrinks (to nothing, if need be)
when the next sentence would not fit after it. Tokens are words and CJK characters
(:mod:`docfn.core.sentences`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from ...core.sentences import sentence_spans, token_count, token_offsets
from .blocks import ImageLink, block_markdown

SEPARATOR = "\n\n"  # between blocks in the Markdown (to_markdown's)


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    block: int
    tokens: int
    heading: bool


def _units(blocks: list[dict[str, Any]], link: ImageLink, size: int) -> list[_Unit]:
    """The Markdown cut at block and sentence ends into units that cover it exactly."""
    kept = [(i, md) for i, md in ((i, block_markdown(b, link)) for i, b in enumerate(blocks)) if md.strip()]
    units: list[_Unit] = []
    offset = 0
    for n, (index, md) in enumerate(kept):
        trailer = len(SEPARATOR) if n < len(kept) - 1 else 1  # to_markdown ends with one newline
        heading = blocks[index].get("type") == "text" and bool(blocks[index].get("text_level"))
        cuts = [span.end for span in sentence_spans(md)[:-1]] + [len(md) + trailer]
        start = 0
        for cut in cuts:
            for a, b in _by_tokens(md + "\n" * trailer, start, cut, size):
                text = (md + "\n" * trailer)[a:b]
                units.append(_Unit(offset + a, offset + b, index, token_count(text), heading))
            start = cut
        offset += len(md) + trailer
    return units


def _by_tokens(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    """``[start, end)`` of ``text`` in pieces of at most ``size`` tokens, cut before a token."""
    starts = token_offsets(text[start:end])
    if len(starts) <= size:
        return [(start, end)]
    cuts = [start + starts[i] for i in range(size, len(starts), size)]
    edges = [start, *cuts, end]
    return list(itertools.pairwise(edges))


def chunk_markdown(
    blocks: list[dict[str, Any]], link: ImageLink, markdown: str, size: int, overlap: int
) -> list[dict[str, Any]]:
    """The chunks of ``markdown`` (made from ``blocks`` with ``link``, as to_markdown makes it)."""
    units = _units(blocks, link, size)
    chunks: list[list[_Unit]] = []
    paths: list[list[str]] = []
    owns: list[int] = []  # how many leading units of each chunk repeat the previous one
    path: list[str] = []
    current: list[_Unit] = []
    own = 0
    for unit in units:
        block = blocks[unit.block]
        opens_section = unit.heading and (not current or current[-1].block != unit.block)
        too_big = sum(u.tokens for u in current) + unit.tokens > size
        if len(current) > own and (opens_section or too_big):
            chunks.append(current)
            paths.append(path)
            owns.append(own)
            current = [] if opens_section else _fitting(_tail(current, overlap), unit, size)
            own = len(current)
        if opens_section:
            level = int(block["text_level"])
            path = [*path[: level - 1], block["text"]]
        current.append(unit)
    if current:
        chunks.append(current)
        paths.append(path)
        owns.append(own)
    listed = zip(chunks, owns, paths, strict=True)
    return [_chunk(n, members, own, path, blocks, markdown) for n, (members, own, path) in enumerate(listed)]


def _tail(units: list[_Unit], overlap: int) -> list[_Unit]:
    """The last units of a chunk that fit in ``overlap`` tokens (whole sentences)."""
    tail: list[_Unit] = []
    total = 0
    for unit in reversed(units):
        if total + unit.tokens > overlap:
            break
        tail.insert(0, unit)
        total += unit.tokens
    return tail if len(tail) < len(units) else tail[1:]  # never the whole chunk again


def _fitting(tail: list[_Unit], unit: _Unit, size: int) -> list[_Unit]:
    """The overlap ``tail`` less its oldest units until ``unit`` fits after it within ``size``: the
    limit is a promise to the embedding model, the overlap only a courtesy (it may shrink to none)."""
    total = sum(u.tokens for u in tail)
    while tail and total + unit.tokens > size:
        total -= tail.pop(0).tokens
    return tail


def _chunk(
    index: int, units: list[_Unit], own: int, path: list[str], blocks: list[dict[str, Any]], markdown: str
) -> dict[str, Any]:
    start, end = units[0].start, units[-1].end
    seen: list[int] = []
    for unit in units:
        if unit.block not in seen:
            seen.append(unit.block)
    boxes = [{"block": i, "page_idx": blocks[i]["page_idx"], "bbox": blocks[i]["bbox"]} for i in seen]
    return {
        "index": index,
        "text": markdown[start:end],
        "start": start,
        "end": end,
        "overlap": units[own].start - start if own < len(units) else end - start,
        "tokens": sum(u.tokens for u in units),
        "heading_path": path,
        "page_idx": sorted({box["page_idx"] for box in boxes}),
        "boxes": boxes,
    }
