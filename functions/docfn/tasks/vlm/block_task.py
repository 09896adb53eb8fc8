"""What the tasks that read one block with the VLM share (``formula``, ``chart``): the ``vlm`` pack
(DOCFN_VLM_MODEL_URI) as their only pack, and the answer's token budget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from ...core.errors import BadOptions
from ...core.settings import Settings
from ...packs.store import LocalPack
from ..contract import Task, TaskOptions
from ..instruction import with_prompt
from . import loading
from .batching import Batching
from .blocks import VLM_PACK
from .reader import BlockReader


class VlmBlockOptions(TaskOptions):
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Most tokens of the answer (default and upper bound: DOCFN_VLM_MAX_TOKENS).",
    )
    prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=4000,
        description="Ask this instead of the task's MinerU2.5 prompt (a multipart instruction field"
        " fills it); the answer is read as the task reads its own.",
    )


class VlmBlockTask(Task):
    """A task whose input image is one block, read with one MinerU2.5 prompt."""

    pack_roles = (VLM_PACK,)
    vlm_queued = True
    reader: BlockReader

    def __init__(self, threads: int = 0, max_tokens: int = 4096, batching: Batching | None = None) -> None:
        super().__init__(threads)
        self.max_tokens = max_tokens
        self.batching = batching or Batching()

    @classmethod
    def from_settings(cls, settings: Settings) -> Task:
        return cls(settings.onnx_threads, settings.vlm_max_tokens, Batching.from_settings(settings))

    def load(self, packs: Mapping[str, LocalPack]) -> None:
        engine = loading.load_engine(packs[VLM_PACK], self.threads, self.batching)
        self.reader = BlockReader(engine, self.max_tokens)

    def check_options(self, options: Any) -> None:
        if options.max_tokens is not None and options.max_tokens > self.max_tokens:
            raise BadOptions(
                f"option max_tokens may be at most {self.max_tokens} (DOCFN_VLM_MAX_TOKENS),"
                f" not {options.max_tokens}"
            )

    def apply_instruction(self, options: Any, instruction: str) -> Any:
        return with_prompt(options, instruction, f"the prompt {self.name} asks")

    def reader_for(self, options: Any) -> BlockReader:
        return BlockReader(self.reader.generator, options.max_tokens or self.max_tokens, options.prompt)
