"""What running a task produced, and how: the result plus what adapters report about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    task: str
    result: dict[str, Any]
    input_sha256: str
    cache_key: str
    cached: bool
    cold: bool
    pages: int
    bytes: int
    timings: dict[str, float] = field(default_factory=dict)
    # What became of the request's free-text instruction (InstructionNote.to_dict()), if it had one.
    instruction: dict[str, Any] | None = None

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        """The response body every adapter answers with (and jobs store as result.json)."""
        body = {
            "task": self.task,
            "request_id": request_id,
            "input_sha256": self.input_sha256,
            "cached": self.cached,
            "cold": self.cold,
            "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
            "result": self.result,
        }
        if self.instruction is not None:
            body["instruction"] = self.instruction
        return body
