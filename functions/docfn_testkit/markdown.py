"""Reading parse's Markdown as a viewer shows it: HTML comments (page furniture, a figure's words)
are in the source but not rendered."""

from __future__ import annotations

import re

_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def rendered(markdown: str) -> str:
    """The Markdown less its HTML comments: what a Markdown viewer shows."""
    return _COMMENT.sub("", markdown)
