"""The reference client's free-text ``instruction``: the VLM's prompt wherever a VLM pack answers the
request, and otherwise a truthful note that it was not applied, and why.

A task says what an instruction does to a request (:meth:`Task.apply_instruction`): the tasks a VLM
answers put it in their ``prompt`` option (:func:`with_prompt`), so it shapes the cache key as every
option does; the others raise :class:`InstructionNotApplied` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..core.errors import BadOptions

Options = TypeVar("Options", bound=BaseModel)
PROMPT_OPTION = "prompt"


class InstructionNotApplied(Exception):
    """The request is answered without a VLM prompt to replace: ``reason`` says so to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class InstructionNote:
    """What the response says about the instruction that came with the request."""

    text: str
    applied: bool
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        note: dict[str, Any] = {"text": self.text, "applied": self.applied}
        if self.reason is not None:
            note["reason"] = self.reason
        return note


def with_prompt(options: Options, instruction: str, what: str) -> Options:
    """``options`` with ``instruction`` as their ``prompt`` (validated as the option is: 422 beyond
    its bounds). ``what``: the prompt it replaces, for the message when both were given."""
    if PROMPT_OPTION in options.model_fields_set and getattr(options, PROMPT_OPTION) != instruction:
        raise BadOptions(
            f"both the prompt option and an instruction were given: the instruction is {what};"
            " send one of them"
        )
    try:
        return type(options).model_validate({**options.model_dump(), PROMPT_OPTION: instruction})
    except ValidationError as exc:
        raise BadOptions(f"instruction: {exc.errors()[0]['msg'].lower()}") from None


def apply(task: Any, options: Options, instruction: str | None) -> tuple[Options, InstructionNote | None]:
    """``options`` as ``task`` answers them with ``instruction``, and the note the response carries."""
    if instruction is None:
        return options, None
    try:
        return task.apply_instruction(options, instruction), InstructionNote(instruction, True)
    except InstructionNotApplied as exc:
        return options, InstructionNote(instruction, False, exc.reason)
