"""Pluggable block recognisers for parse, one slot per block type.

Tables go to a :class:`~docfn.tasks.table.table_recognizers.TableRecognizer` ("auto"), and formulas
have no recogniser by name (``latex`` stays null; OCR text is the fallback). The VLM reads formula,
table and figure crops when parse's ``vlm_blocks`` lists them (``parse.task``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from ...core.errors import BadOptions


class FormulaRecognizer(Protocol):
    name: str

    def __call__(self, image_rgb: np.ndarray) -> str | None:
        """LaTeX for a formula crop, or None when it cannot say."""
        ...


_FORMULA: dict[str, Callable[..., FormulaRecognizer]] = {}


def register_formula_recognizer(name: str, factory: Callable[..., FormulaRecognizer]) -> None:
    _FORMULA[name] = factory


def formula_recognizer(name: str, **resources: object) -> FormulaRecognizer | None:
    if name == "none":
        return None
    factory = _FORMULA.get(name)
    if factory is None:
        raise BadOptions(f"unknown formula recogniser {name!r}; available: {['none', *sorted(_FORMULA)]}")
    return factory(**resources)


def formula_recognizer_names() -> list[str]:
    return ["none", *sorted(_FORMULA)]
