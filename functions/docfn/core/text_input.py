"""Text inputs: plain text, Markdown, or JSON ``{"text": ...}`` — for the tasks that read text
(summarize) instead of page images.

A body is text when it says so (``text/plain``, ``text/markdown``, ``application/json``) or, declared
as nothing in particular, when it is no image or PDF and decodes as UTF-8.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from .documents import UNINFORMATIVE_TYPES, sniff_format
from .errors import BadInput

TEXT_TYPES: dict[str, str] = {
    "text/plain": "plain",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "application/json": "json",
}


@dataclass(frozen=True)
class TextInput:
    text: str
    format: Literal["plain", "markdown"]


def declared_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def is_text_input(data: bytes, content_type: str | None) -> bool:
    declared = declared_type(content_type)
    if declared in TEXT_TYPES:
        return True
    if declared not in UNINFORMATIVE_TYPES or sniff_format(data) is not None:
        return False
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= 4090  # a character cut by the sample's end is still text
    return True


def read_text_input(data: bytes, content_type: str | None) -> TextInput:
    """The text of a text body; :class:`BadInput` for undecodable or empty text."""
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"a text body must be UTF-8; byte {exc.start} is not") from None
    kind = TEXT_TYPES.get(declared_type(content_type), "plain")
    text, fmt = raw, "markdown" if kind == "markdown" else "plain"
    if kind == "json":
        text, fmt = _from_json(raw)
    if not text.strip():
        raise BadInput("the text is empty; send the text to summarise")
    return TextInput(text, fmt)  # type: ignore[arg-type]


def _from_json(raw: str) -> tuple[str, str]:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadInput(f"the JSON body cannot be read: {exc}") from None
    except RecursionError:  # json's decoder recurses per level: thousands of "[" exhaust the stack
        raise BadInput("the JSON body is nested too deeply to read") from None
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise BadInput('a JSON body carries the text as {"text": "..."} (or names a document: {"url": ...})')
    fmt = body.get("format", "markdown")
    if fmt not in ("plain", "markdown"):
        raise BadInput(f'"format" is plain or markdown, not {fmt!r}')
    text: str = body["text"]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate escape (\ud800) is JSON but no text
        raise BadInput(f'"text" is not Unicode text: character {exc.start} is a lone surrogate') from None
    return text, fmt
