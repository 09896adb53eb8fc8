"""The one place a task turns its verified VLM pack into a generator: the batching engine
(:class:`~docfn.tasks.vlm.engine.VlmEngine`), so that every caller in a function (the ``vlm`` task's
pages and chat API, ``formula``, ``chart``, table's and parse's VLM blocks) shares one queue and its
requests share forward passes. This module imports no runtime: tokenizers is a task extra
(task-vlm, task-formula, …), and table and parse need the VLM only for the requests that ask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...core.errors import ConfigurationError
from ...core.settings import Settings
from ...packs.store import LocalPack

if TYPE_CHECKING:
    from .engine import VlmEngine

# The reference deployment's queue: requests within 200 ms share a batch of at most 16.
DEFAULT_WINDOW_SECONDS = 0.2
DEFAULT_MAX_BATCH = 16


@dataclass(frozen=True)
class Batching:
    """How long the first queued request waits for others, and how many decode together."""

    window_seconds: float = DEFAULT_WINDOW_SECONDS
    max_batch: int = DEFAULT_MAX_BATCH

    @classmethod
    def from_settings(cls, settings: Settings) -> Batching:
        return cls(settings.vlm_batch_window_ms / 1000, settings.vlm_max_batch)


def load_engine(pack: LocalPack, threads: int = 0, batching: Batching | None = None) -> VlmEngine:
    """The batching engine over a verified VLM pack."""
    batching = batching or Batching()
    try:
        from .engine import VlmEngine
        from .model import VlmModel
    except ImportError as exc:
        raise ConfigurationError(
            f"the VLM runtime needs the tokenizers package ({exc}): pip install 'docfn[task-vlm]'"
        ) from None
    model = VlmModel.from_pack(pack.pack_dir, pack.manifest, threads)
    return VlmEngine(model, window_seconds=batching.window_seconds, max_batch=batching.max_batch)
