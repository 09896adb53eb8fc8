"""Blocks read by the VLM with MinerU2.5's prompts: a page's layout, a formula's LaTeX, a table's
cells, a picture's analysis, a text block's words. Pure protocol over a :class:`VlmGenerator`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from ..table.structure import Table
from .blocks import VlmGenerator
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

    def generate(self, image: Image.Image, block_type: str) -> Generation:
        """The answer to ``block_type``'s prompt (or the reader's own) about ``image``, with special
        tokens kept."""
        return self.generator.generate(
            image,
            self.prompt or prompt_for(block_type),
            knobs_for(block_type),
            self.max_tokens,
            None,
            skip_special_tokens=False,
        )

    def answer(self, image: Image.Image, block_type: str) -> str:
        return self.generate(image, block_type).text

    def layout(self, page: Image.Image) -> list[LayoutBlock]:
        generation = self.generator.generate(
            layout_view(page), LAYOUT_PROMPT, LAYOUT_KNOBS, self.max_tokens, None, skip_special_tokens=False
        )
        return parse_layout(generation.text)

    def text(self, image: Image.Image, block_type: str = "text") -> str:
        return _TAGS.sub("", self.answer(image, block_type)).strip()

    def formula(self, image: Image.Image) -> Formula:
        generation = self.generate(image, "equation")
        return Formula(clean_latex(_TAGS.sub("", generation.text)), generation.finish_reason == "stop")

    def table(self, image: Image.Image) -> Table:
        """The table's cells (an answer with no OTSL at all is kept whole in one cell)."""
        return otsl_to_table(_TAGS.sub("", self.answer(image, "table")).strip())

    def analyse(self, image: Image.Image) -> ImageAnalysis:
        return parse_image_analysis(self.answer(image, "chart"))
