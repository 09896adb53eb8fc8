"""What the block tasks (formula, chart, table's VLM mode, parse's VLM blocks) need of the VLM: one
call, :meth:`VlmGenerator.generate`, an image and a prompt in, the answer out; and
:meth:`VlmGenerator.submit_many`, a page's or a document's blocks at once, so they decode together.

The engine (``VlmEngine``: iteration-level batching, requests join the running batch)
implements it; ``loading.load_engine`` is the one place a task turns its VLM pack into one, and
tests drive the block protocol with scripted generators. This module imports no runtime (tokenizers):
table and parse import it and need the VLM only for the requests that ask for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from PIL import Image

from .sampling import SamplingKnobs

if TYPE_CHECKING:
    from .model import Generation

# The pack role of the VLM (DOCFN_VLM_MODEL_URI; default the catalog's VLM pack).
VLM_PACK = "vlm"


@dataclass(frozen=True)
class VlmCall:
    """One question to the VLM among several submitted together (:meth:`VlmGenerator.submit_many`)."""

    image: Image.Image | None
    prompt: str
    knobs: SamplingKnobs
    max_tokens: int
    skip_special_tokens: bool = True
    system: str | None = None


class VlmGenerator(Protocol):
    def generate(
        self,
        image: Image.Image | None,
        prompt: str,
        knobs: SamplingKnobs,
        max_tokens: int,
        deadline: float | None,
        system: str | None = None,
        skip_special_tokens: bool = True,
    ) -> Generation:
        """The answer (``Generation.text``) to ``image`` (or none) then ``prompt`` as one user turn."""
        ...

    def submit_many(self, calls: Sequence[VlmCall], deadline: float | None) -> list[Future[Generation]]:
        """The answers to several questions, queued at once so that they decode together: one
        future each, holding its :class:`Generation` or its error."""
        ...
