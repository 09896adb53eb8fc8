"""Content-list blocks in the shape of MinerU's ``content_list.json``, and Markdown from them.

Types: ``text`` (a heading has ``text_level``), ``list`` (``list_items``), ``code`` (``code_body``,
``code_caption``: boxed listings the layout model called figures, indented code in text),
``image`` (``img_path``, ``image_caption``, ``image_footnote``, ``image_text``: the words drawn in
it), ``table`` (``table_body`` HTML, ``table_caption``, ``table_footnote``, ``img_path``),
``equation`` (``img_path``, ``text``, ``text_format``, and ``latex``: null until a formula
recogniser is configured), ``ref_text``, and the page furniture ``header``, ``footer``,
``page_number``, ``aside_text``, ``page_footnote``.
Nothing read is lost from the Markdown, yet it renders only the body: the page furniture and the words
drawn in a figure (``image_text``) ride along in HTML comments (``<!-- header: ... -->``,
``<!-- figure text: ... -->``), which a Markdown viewer does not show but search, chunks and
language models read.
An ``image`` read by the VLM also has ``sub_type`` (its kind: chart, natural_image, ...) and
``image_analysis`` (kind, sub_kind, caption, content, complete).
``bbox`` is 0-1000 normalised to the page, as MinerU's; ``page_idx`` is 0-based.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from .text import bullet_stripped

_NUMBERED = re.compile(r"^\s*\d{1,2}[.)]\s")
_ROW = re.compile(r"<tr\b[^>]*>(.*?)</tr>", re.DOTALL)
_CELL = re.compile(r"<t[dh]\b[^>]*>(.*?)</t[dh]>", re.DOTALL)
FURNITURE = frozenset({"header", "footer", "page_number", "aside_text", "page_footnote"})

# What a crop's ``img_path`` becomes in the Markdown: a link target, or None for no link at all.
ImageLink = Callable[[str], str | None]


def _image(link: ImageLink, img_path: str | None, alt: str) -> str:
    target = link(img_path) if img_path else None
    return f"![{alt}]({target})" if target else ""


def _list_item(item: str) -> str:
    """A Markdown list line: numbered items keep their number, the rest get a dash for a bullet."""
    if _NUMBERED.match(item):
        return item
    return "- " + bullet_stripped(item)


def comment(label: str, text: str) -> str:
    """``text`` in an HTML comment: in the Markdown's source, not in its rendering. A ``-->`` inside
    would end the comment early, so its dashes are spaced."""
    text = " ".join(text.split()).replace("-->", "- ->").replace("--!>", "- -!>")
    return f"<!-- {label}: {text} -->" if text else ""


def _paragraphs(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)


def block_markdown(block: dict[str, Any], link: ImageLink = lambda path: path) -> str:
    kind = block["type"]
    if kind in FURNITURE:  # a running head or page number is not body text: kept, not shown
        return comment(kind.replace("_", " "), block.get("text", ""))
    if kind == "text" and block.get("text_level"):
        return "#" * int(block["text_level"]) + " " + block["text"]
    if kind in {"text", "ref_text"}:
        return block["text"]
    if kind == "list":
        return "\n".join(_list_item(item) for item in block["list_items"])
    if kind == "code":
        return _paragraphs(f"```\n{block['code_body']}\n```", *block.get("code_caption", []))
    if kind == "image":  # the caption once, below the picture (not again as its alt text)
        analysis = block.get("image_analysis") or {}
        # What the VLM read of it (a chart's data table, a flowchart's Mermaid) after the caption;
        # its own caption only when the page gave none.
        described = [] if block["image_caption"] else [analysis.get("caption", "")]
        return "\n\n".join(
            p
            for p in (
                _image(link, block.get("img_path"), "figure"),
                *block["image_caption"],
                *described,
                analysis.get("content", ""),
                *block.get("image_footnote", []),
                comment("figure text", block.get("image_text", "")),
            )
            if p
        )
    if kind == "table":
        return "\n\n".join([*block["table_caption"], block["table_body"], *block["table_footnote"]])
    if kind == "equation":
        if block.get("latex"):
            return f"$$\n{block['latex']}\n$$"
        # No formula recogniser: the image, and what OCR could read of it so the text is searchable.
        return "\n\n".join(
            p for p in (_image(link, block.get("img_path"), "equation"), block.get("text", "")) if p
        )
    return block.get("text", "")


def to_markdown(blocks: list[dict[str, Any]], link: ImageLink = lambda path: path) -> str:
    """The blocks as Markdown; ``link`` says what each crop's link points at (nothing, when the
    crop does not travel with the result: Markdown never references what it is not given)."""
    parts = [md for md in (block_markdown(b, link) for b in blocks) if md.strip()]
    return "\n\n".join(parts) + "\n"


def block_text(block: dict[str, Any]) -> str:
    """A block's words as plain text, every kind (furniture, list items, code, table cells, a
    figure's caption and words, an equation's LaTeX or OCR text): ``--format text``."""
    kind = block["type"]
    if kind == "list":
        return "\n".join(block["list_items"])
    if kind == "code":
        return _paragraphs(block["code_body"], *block.get("code_caption", []))
    if kind == "image":
        analysis = block.get("image_analysis") or {}
        return _paragraphs(
            *block.get("image_caption", []),
            analysis.get("content", ""),
            block.get("image_text", ""),
            *block.get("image_footnote", []),
        )
    if kind == "table":
        rows = [
            "\t".join(html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in _CELL.findall(row))
            for row in _ROW.findall(block["table_body"])
        ]
        return _paragraphs(*block["table_caption"], "\n".join(rows), *block["table_footnote"])
    if kind == "equation":
        return block.get("latex") or block.get("text", "")
    return block.get("text", "")


def to_text(blocks: list[dict[str, Any]]) -> str:
    """The blocks' words as plain text, one paragraph per block."""
    return "\n\n".join(t for t in (block_text(b) for b in blocks) if t.strip()) + "\n"
