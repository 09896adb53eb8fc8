"""The plain :class:`VlmGenerator`: one request at a time over a :class:`VlmModel`, and
:func:`load_generator`, the one place a task turns its verified ``vlm`` pack into a generator (the
service's batching engine takes its place where it runs)."""

from __future__ import annotations

import dataclasses
import threading

from PIL import Image

from ...core.errors import ConfigurationError
from ...packs.store import LocalPack
from .blocks import VlmGenerator
from .preprocess import VisionInput, preprocess
from .sampling import SamplingKnobs

try:
    from .model import DEFAULT_SYSTEM, Generation, VlmModel
except ImportError as exc:  # tokenizers: a task extra (task-formula, task-chart), not in every image
    _MISSING: ImportError | None = exc
else:
    _MISSING = None


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
    if _MISSING is not None:
        raise ConfigurationError(
            f"the VLM runtime needs the tokenizers package ({_MISSING}): pip install 'docfn[task-formula]'"
        )
    return UnbatchedGenerator(VlmModel.from_pack(pack.pack_dir, pack.manifest, threads))
