"""The ``vlm`` task: a MinerU2.5 pack behind the batching engine.

Per page: the page image and the ``prompt`` option, answered as text (``POST /v1/vlm``). Callers that
speak MinerU's client protocol (``POST /v1/chat/completions``) and tasks that send blocks to the VLM
use :attr:`VlmTask.engine` directly: every caller shares one queue, so their requests share batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from PIL import Image

from ...core.documents import PageImage
from ...core.settings import Settings
from ...packs.refs import OWN_PACK
from ...packs.store import LocalPack
from ..contract import Task, page_fields
from .options import VlmOptions
from .sampling import SamplingKnobs

if TYPE_CHECKING:
    from .engine import VlmEngine


class VlmTask(Task):
    name = "vlm"
    Options = VlmOptions

    engine: VlmEngine

    def __init__(self, threads: int = 0, *, window_seconds: float = 0.2, max_batch: int = 16) -> None:
        super().__init__(threads)
        self.window_seconds = window_seconds
        self.max_batch = max_batch

    @classmethod
    def from_settings(cls, settings: Settings) -> VlmTask:
        return cls(
            settings.onnx_threads,
            window_seconds=settings.vlm_batch_window_ms / 1000,
            max_batch=settings.vlm_max_batch,
        )

    def load(self, packs: Mapping[str, LocalPack]) -> None:
        # tokenizers is imported with the model: only images of tasks that use the VLM carry it.
        from .engine import VlmEngine
        from .model import VlmModel

        pack = packs[OWN_PACK]
        model = VlmModel.from_pack(pack.pack_dir, pack.manifest, self.threads)
        self.engine = VlmEngine(model, window_seconds=self.window_seconds, max_batch=self.max_batch)

    def predict_page(self, page: PageImage, options: VlmOptions) -> dict[str, Any]:
        answer = self.engine.generate(
            Image.fromarray(page.image), options.prompt, SamplingKnobs(), options.max_tokens, None
        )
        return {
            **page_fields(page),
            "text": answer.text,
            "finish_reason": answer.finish_reason,
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": len(answer.token_ids),
        }
