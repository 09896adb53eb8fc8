"""The ``vlm`` task: a MinerU2.5 pack behind the batching engine.

Per page: the page image and the ``prompt`` option, answered as text (``POST /v1/vlm``). Callers that
speak MinerU's client protocol (``POST /v1/chat/completions``) and tasks that send blocks to the VLM
use :attr:`VlmTask.engine` directly: every caller shares one queue, so their requests share batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from PIL import Image

from ...core import deadline
from ...core.documents import PageImage
from ...core.settings import Settings
from ...packs.refs import OWN_PACK
from ...packs.store import LocalPack
from ..contract import Task, page_fields
from ..instruction import with_prompt
from . import loading
from .batching import Batching
from .options import VlmOptions
from .sampling import SamplingKnobs

if TYPE_CHECKING:
    from .engine import VlmEngine


class VlmTask(Task):
    name = "vlm"
    Options = VlmOptions
    vlm_queued = True

    engine: VlmEngine

    def __init__(self, threads: int = 0, batching: Batching | None = None) -> None:
        super().__init__(threads)
        self.batching = batching or Batching()

    @classmethod
    def from_settings(cls, settings: Settings) -> VlmTask:
        return cls(settings.onnx_threads, Batching.from_settings(settings))

    def load(self, packs: Mapping[str, LocalPack]) -> None:
        self.engine = loading.load_engine(packs[OWN_PACK], self.threads, self.batching)

    def apply_instruction(self, options: VlmOptions, instruction: str) -> VlmOptions:
        return with_prompt(options, instruction, "the prompt asked about each page")

    def predict_page(self, page: PageImage, options: VlmOptions) -> dict[str, Any]:
        answer = self.engine.generate(
            Image.fromarray(page.image),
            options.prompt,
            SamplingKnobs(),
            options.max_tokens,
            deadline.current(),
        )
        return {
            **page_fields(page),
            "text": answer.text,
            "finish_reason": answer.finish_reason,
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": len(answer.token_ids),
        }
