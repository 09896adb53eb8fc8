"""What a summary is made from: the source's sentences, grouped in sections, each with where it came
from — a character span of a text input, or a block of parse's content list (page and box).

Sections come from Markdown headings (text inputs) or parse's headings (``text_level``), so the
ranking can spread a summary over the document instead of its first section.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ...core.sentences import sentence_spans
from ...core.text_input import TextInput
from .prose import prose_parts

_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
# Markdown that is no prose: fenced code, table rows, HTML comments. Sentences are not looked for there.
_MD_NOT_PROSE = re.compile(r"^```.*?^```[^\n]*$|^[ \t]*\|.*$|<!--.*?-->", re.MULTILINE | re.DOTALL)
# Parse's blocks whose text is prose worth summarising (furniture, code and formulas are not); of
# those, each sentence must still read as prose (``prose.is_prose``).
_PROSE = frozenset({"text", "list", "ref_text"})
# Blocks with content that is not prose, counted in what was left out (furniture is not content).
_NOT_PROSE = frozenset({"code", "equation", "table"})


@dataclass(frozen=True)
class Sentence:
    text: str
    section: int  # index into Source.sections
    start: int | None = None  # text inputs: [start, end) of the input text
    end: int | None = None
    block: int | None = None  # documents: index into parse's content list
    page: int | None = None  # 1-based
    bbox: list[float] | None = None  # the block's box, 0-1000 of the page (parse's convention)

    def provenance(self) -> dict[str, Any]:
        where: dict[str, Any] = {"text": self.text, "section": self.section}
        if self.block is not None:
            where.update(block=self.block, page=self.page, bbox=self.bbox)
        else:
            where.update(start=self.start, end=self.end)
        return where


@dataclass
class Source:
    """The sentences of a document, in reading order, and its section titles (index 0: before the
    first heading, titled "")."""

    sentences: list[Sentence] = field(default_factory=list)
    sections: list[list[str]] = field(default_factory=lambda: [[]])  # heading path per section
    # Documents: what was not summarised, by kind: blocks of code, formulas, tables (by their type)
    # and "sentences" of prose blocks that read as code, formulas or table rows (prose.is_prose).
    left_out: dict[str, int] = field(default_factory=dict)

    def leave_out(self, kind: str) -> None:
        self.left_out[kind] = self.left_out.get(kind, 0) + 1

    def _section(self, level: int, title: str) -> int:
        path = self.sections[-1]
        self.sections.append([*path[: max(0, level - 1)], title])
        return len(self.sections) - 1

    def text(self) -> str:
        return "\n".join(s.text for s in self.sentences)


def from_text(given: TextInput) -> Source:
    """A text input's sentences; Markdown headings open sections (plain text is one section)."""
    source = Source()
    text = given.text
    cuts: list[tuple[int, int, int, str]] = []  # heading line [start, end), level, title
    if given.format == "markdown":
        cuts = [(m.start(), m.end(), len(m.group(1)), m.group(2)) for m in _MD_HEADING.finditer(text)]
    if given.format == "markdown":
        cuts += [(m.start(), m.end(), 0, "") for m in _MD_NOT_PROSE.finditer(text)]
        cuts.sort()
    position, section = 0, 0
    for start, end, level, title in [*cuts, (len(text), len(text), 0, "")]:
        if start < position:
            continue  # a heading inside a code block is code
        _add_spans(source, text, position, start, section)
        if level:
            section = source._section(level, title)
        position = end
    return source


def _add_spans(source: Source, text: str, begin: int, end: int, section: int) -> None:
    for span in sentence_spans(text[begin:end]):
        s, e = begin + span.start, begin + span.end
        source.sentences.append(Sentence(text[s:e], section, start=s, end=e))


def from_parse(result: dict[str, Any]) -> Source:
    """Parse's content list as sentences: headings open sections, prose blocks give sentences, and
    of those only the ones that read as prose (code and formulas are not sentences)."""
    source = Source()
    section = 0
    for index, block in enumerate(result.get("content_list", [])):
        kind = block.get("type")
        if kind == "text" and block.get("text_level"):
            section = source._section(int(block["text_level"]), block["text"])
            continue
        if kind not in _PROSE:
            if kind in _NOT_PROSE:
                source.leave_out(kind)
            continue
        for text in _block_texts(block):
            for span in sentence_spans(text):
                # A listing or formula the layout boxed as text, or run on after a paragraph.
                kept, dropped = prose_parts(span.text)
                for _ in range(dropped):
                    source.leave_out("sentences")
                for part in kept:
                    source.sentences.append(
                        Sentence(
                            part,
                            section,
                            block=index,
                            page=int(block["page_idx"]) + 1,
                            bbox=list(block["bbox"]),
                        )
                    )
    return source


def _block_texts(block: dict[str, Any]) -> Iterator[str]:
    if block.get("type") == "list":
        yield from block.get("list_items", [])
    else:
        yield block.get("text", "")
