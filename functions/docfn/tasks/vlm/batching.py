"""How the VLM's requests are batched (the engine's settings), known without importing the runtime."""

from __future__ import annotations

from dataclasses import dataclass

from ...core.settings import Settings

# The reference deployment's queue: requests within 200 ms share a batch of at most 16. With
# iteration-level scheduling the window only applies at an idle engine (engine.py).
DEFAULT_WINDOW_SECONDS = 0.2
DEFAULT_MAX_BATCH = 16


@dataclass(frozen=True)
class Batching:
    """How long a request reaching the idle engine waits for others, and how many decode together."""

    window_seconds: float = DEFAULT_WINDOW_SECONDS
    max_batch: int = DEFAULT_MAX_BATCH

    @classmethod
    def from_settings(cls, settings: Settings) -> Batching:
        return cls(settings.vlm_batch_window_ms / 1000, settings.vlm_max_batch)
