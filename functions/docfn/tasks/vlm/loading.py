"""The one place a task turns its verified VLM pack into a generator: the batching engine
(:class:`~docfn.tasks.vlm.engine.VlmEngine`), so that every caller in a function (the ``vlm`` task's
pages and chat API, ``formula``, ``chart``, table's and parse's VLM blocks) shares one queue and its
requests share forward passes. This module imports no runtime: tokenizers is a task extra
(task-vlm, task-formula, …), and table and parse need the VLM only for the requests that ask."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...core.errors import ConfigurationError
from ...packs.store import LocalPack
from .batching import Batching

if TYPE_CHECKING:
    from .engine import VlmEngine


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
