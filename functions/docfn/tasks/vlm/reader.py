"""Blocks read by the VLM with MinerU2.5's prompts: a page's layout, a formula's LaTeX, a table's
cells, a picture's analysis, a text block's words. Pure protocol over a :class:`VlmGenerator`.

A caller with several blocks submits them together (:meth:`BlockReader.submit`, then the ``*_of``
readings of each answer) so they decode in one batch rather than one after another. Every call
carries the deadline of the request it works for (``docfn.core.deadline``): past it, the engine
stops decoding the block (504).
"""

from __future__ import annotations

import re
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from ...core import deadline
from ..table.structure import Table
from .blocks import VlmCall, VlmGenerator
from .image_analysis import ImageAnalysis, parse_image_analysis
from .latex import clean_latex
from .mineru import LAYOUT_KNOBS, LAYOUT_PROMPT, LayoutBlock, knobs_for, layout_view, parse_layout, prompt_for
from .otsl import otsl_to_table

if TYPE_CHECKING:
    from .model import Generation


@dataclass(frozen=True)
class Formula:
    latex: str
    complete: bool  # the answer ended on its own (not cut at max tokens)


# Chat-template and layout tags a recognition answer may still carry (answers keep special tokens).
_TAGS = re.compile(r"<\|[a-z_]+\|>")


class BlockReader:
    def __init__(self, generator: VlmGenerator, max_tokens: int, prompt: str | None = None) -> None:
        """``prompt``: asked instead of each block type's MinerU2.5 prompt (a caller's instruction)."""
        self.generator = generator
        self.max_tokens = max_tokens
        self.prompt = prompt

    def _call(self, image: Image.Image, block_type: str) -> VlmCall:
        prompt = self.prompt or prompt_for(block_type)
        return VlmCall(image, prompt, knobs_for(block_type), self.max_tokens, skip_special_tokens=False)

    def submit(self, blocks: list[tuple[Image.Image, str]]) -> list[Future[Generation]]:
        """The answers to several blocks (image, block type), queued together: they decode in one
        batch. Special tokens are kept."""
        calls = [self._call(image, block_type) for image, block_type in blocks]
        return self.generator.submit_many(calls, deadline.current()) if calls else []

    def generate(self, image: Image.Image, block_type: str) -> Generation:
        """The answer to ``block_type``'s prompt (or the reader's own) about ``image``, with special
        tokens kept."""
        return self.submit([(image, block_type)])[0].result()

    def answer(self, image: Image.Image, block_type: str) -> str:
        return self.generate(image, block_type).text

    def layout(self, page: Image.Image) -> list[LayoutBlock]:
        call = VlmCall(
            layout_view(page), LAYOUT_PROMPT, LAYOUT_KNOBS, self.max_tokens, skip_special_tokens=False
        )
        (generation,) = self.generator.submit_many([call], deadline.current())
        return parse_layout(generation.result().text)

    def text(self, image: Image.Image, block_type: str = "text") -> str:
        return text_of(self.generate(image, block_type))

    def formula(self, image: Image.Image) -> Formula:
        return formula_of(self.generate(image, "equation"))

    def table(self, image: Image.Image) -> Table:
        return table_of(self.generate(image, "table"))

    def analyse(self, image: Image.Image) -> ImageAnalysis:
        return analysis_of(self.generate(image, "chart"))


def text_of(generation: Generation) -> str:
    return _TAGS.sub("", generation.text).strip()


def formula_of(generation: Generation) -> Formula:
    return Formula(clean_latex(_TAGS.sub("", generation.text)), generation.finish_reason == "stop")


def table_of(generation: Generation) -> Table:
    """The table's cells (an answer with no OTSL at all is kept whole in one cell)."""
    return otsl_to_table(text_of(generation))


def analysis_of(generation: Generation) -> ImageAnalysis:
    return parse_image_analysis(generation.text)
