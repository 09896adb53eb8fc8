""" "Image Analysis:" answers: what a picture is (its class and sub-class), a caption, and its content
(a chart's data as a Markdown table, a flowchart as Mermaid, a table or formula drawn as a picture).

The answer tags each field, ``<|class_start|>chart<|class_end|>`` and so on. A field whose end tag is
missing (generation cut at max tokens) keeps what was written of it only for the content, the field
that comes last; a chart whose data table is malformed loses the table rather than passing on a
broken one, as MinerU's client does.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

_FIELDS = ("class", "sub_class", "caption", "content")
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$")


@dataclass(frozen=True)
class ImageAnalysis:
    kind: str  # chart, natural_image, flowchart, pure_table, pure_formula, chemical, ... ('' unknown)
    sub_kind: str
    caption: str
    content: str
    complete: bool  # every field the answer opened was closed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _field(answer: str, name: str) -> tuple[str, bool]:
    """(value, closed) of field ``name``; ('', True) when the answer does not have it."""
    start, end = f"<|{name}_start|>", f"<|{name}_end|>"
    at = answer.find(start)
    if at < 0:
        return "", True
    body = answer[at + len(start) :]
    stop = body.find(end)
    if stop < 0:
        return body.split("<|", 1)[0].strip() if name == "content" else "", False
    return body[:stop].strip(), True


def _columns(line: str) -> int:
    return len(line.strip().strip("|").split("|"))


def markdown_table_ok(content: str) -> bool:
    """Whether every Markdown table in ``content`` has a header row, a separator of the same width
    and body rows of that width (a chart's data must read as a table or not at all)."""
    lines = [line for line in content.splitlines() if line.strip()]
    rows = [i for i, line in enumerate(lines) if "|" in line]
    separators = [i for i in rows if _SEPARATOR.match(lines[i])]
    if len(rows) >= 2 and not separators:
        return False
    for at in separators:
        if at == 0 or "|" not in lines[at - 1]:
            return False
        width = _columns(lines[at - 1])
        if width < 2 or _columns(lines[at]) != width:
            return False
        for line in lines[at + 1 :]:
            if "|" not in line:
                break
            if _columns(line) != width:
                return False
    return True


def parse_image_analysis(answer: str) -> ImageAnalysis:
    values: dict[str, str] = {}
    complete = True
    for name in _FIELDS:
        values[name], closed = _field(answer, name)
        complete = complete and closed
    kind = values["class"].lower()
    content = values["content"]
    if not any(values.values()) and "<|" not in answer:
        content = answer.strip()  # an untagged answer: all of it is the content
    if kind == "chart" and content and not markdown_table_ok(content):
        content = ""
    return ImageAnalysis(kind, values["sub_class"].lower(), values["caption"], content, complete)
