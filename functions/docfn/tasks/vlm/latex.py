"""LaTeX from "Formula Recognition:" answers, cleaned the way MinerU's client cleans them (its rules,
re-stated): display delimiters removed, ``\\coloneqq``/``\\eqqcolon`` spelled out, unpaired
``\\left``/``\\right`` dropped, braces that close nothing or are never closed removed. The result
compiles more often; it is never longer than the answer plus the spelled-out colons."""

from __future__ import annotations

import re

_DELIMITERS = (("\\[", "\\]"), ("$$", "$$"), ("\\(", "\\)"), ("$", "$"))
_ENVIRONMENT = re.compile(r"^\\begin\{(equation\*?|displaymath)\}(.*)\\end\{\1\}$", re.DOTALL)
_LEFT = re.compile(r"\\left(?![a-zA-Z])")
_RIGHT = re.compile(r"\\right(?![a-zA-Z])")


def _undelimited(latex: str) -> str:
    text = latex.strip()
    for opening, closing in _DELIMITERS:
        if len(text) > len(opening) + len(closing) and text.startswith(opening) and text.endswith(closing):
            return text[len(opening) : -len(closing)].strip()
    match = _ENVIRONMENT.match(text)
    return match.group(2).strip() if match else text


def _balanced_left_right(latex: str) -> str:
    """``\\left`` and ``\\right`` must pair up; when they do not, the sizing commands go and the
    delimiters they sized stay (``\\left(`` -> ``(``): same symbols, always valid."""
    if len(_LEFT.findall(latex)) == len(_RIGHT.findall(latex)):
        return latex
    return _RIGHT.sub("", _LEFT.sub("", latex))


def _balanced_braces(latex: str) -> str:
    """Drop a ``}`` with no ``{`` before it and a ``{`` never closed (escaped braces are text)."""
    opened: list[int] = []
    unmatched: set[int] = set()
    escaped = False
    for i, char in enumerate(latex):
        if escaped:
            escaped = False
            continue
        if char == "\\":
            escaped = True
        elif char == "{":
            opened.append(i)
        elif char == "}":
            if opened:
                opened.pop()
            else:
                unmatched.add(i)
    unmatched.update(opened)
    return "".join(char for i, char in enumerate(latex) if i not in unmatched)


def clean_latex(answer: str) -> str:
    """The formula of an answer, ready to place between ``$$`` lines ('' for an empty answer)."""
    latex = _undelimited(answer)
    latex = latex.replace("\\coloneqq", ":=").replace("\\eqqcolon", "=:")
    latex = _balanced_left_right(latex)
    latex = _balanced_braces(latex)
    return latex.strip()
