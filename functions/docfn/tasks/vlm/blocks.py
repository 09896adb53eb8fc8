"""What the block tasks (formula, chart, table's VLM mode, parse's VLM blocks) need of the VLM: one
call, :meth:`VlmGenerator.generate`, an image and a prompt in, the answer out.

The service's batching engine (``VlmEngine``: requests arriving within a window share forward
passes) has this exact signature. :class:`UnbatchedGenerator` is the plain one over a
:class:`VlmModel`, one request at a time; :func:`load_generator` is the one place a block task turns
its ``vlm`` pack into a generator.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Protocol

from PIL import Image

from ...packs.store import LocalPack
from .model import DEFAULT_SYSTEM, Generation, VlmModel
from .preprocess import VisionInput, preprocess
from .sampling import SamplingKnobs

# The pack role of the VLM (DOCFN_VLM_MODEL_URI; default the catalog's VLM pack).
VLM_PACK = "vlm"


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


class UnbatchedGenerator:
    """One request at a time over a loaded :class:`VlmModel` (its sessions are shared, so calls are
    serialised: ONNX Runtime already uses every core for one sequence)."""

    def __init__(self, model: VlmModel) -> None:
        self.model = model
        self._lock = threading.Lock()

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
        images = [preprocess(image, self.model.processor)] if image is not None else []
        content: list[str | VisionInput] = [*images, prompt]
        ids = self.model.chat_prompt(content, system=DEFAULT_SYSTEM if system is None else system)
        with self._lock:
            answer = self.model.generate(
                ids, images, max_new_tokens=max_tokens, knobs=knobs, deadline=deadline
            )
        text = self.model.decode(answer.token_ids, skip_special_tokens=skip_special_tokens)
        return dataclasses.replace(answer, text=text)


def load_generator(pack: LocalPack, threads: int = 0) -> VlmGenerator:
    """The generator of a verified VLM pack."""
    return UnbatchedGenerator(VlmModel.from_pack(pack.pack_dir, pack.manifest, threads))
