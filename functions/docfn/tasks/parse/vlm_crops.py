"""Parse's VLM blocks (``vlm_blocks``: formula, table, chart crops) read together.

The page parser calls a block recogniser crop by crop as it builds the page's blocks. A recogniser
backed by the VLM is told the page's crops first (:meth:`VlmCrops.prefetch`): it submits them all
at once, so they decode in one batch of the engine, and each later call takes its crop's answer
(a crop it was not told of is submitted alone).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
from PIL import Image

from ..vlm.reader import BlockReader

if TYPE_CHECKING:
    from ..vlm.generation import Generation

T = TypeVar("T")


def _key(crop: np.ndarray) -> tuple[tuple[int, ...], bytes]:
    return crop.shape, hashlib.blake2b(np.ascontiguousarray(crop).tobytes(), digest_size=16).digest()


class VlmCrops(Generic[T]):
    """A block recogniser reading crops with one of MinerU2.5's prompts (``block_type``);
    ``read`` turns the answer (and its crop) into the recogniser's result."""

    def __init__(
        self, reader: BlockReader, block_type: str, read: Callable[[Generation, np.ndarray], T]
    ) -> None:
        self.name = "vlm"
        self.reader = reader
        self.block_type = block_type
        self.read = read
        self._ahead: dict[tuple[tuple[int, ...], bytes], Future[Generation]] = {}

    def prefetch(self, crops: list[np.ndarray]) -> None:
        """Submit ``crops`` together, ahead of the calls that will ask for them."""
        answers = self.reader.submit([(Image.fromarray(crop), self.block_type) for crop in crops])
        for crop, answer in zip(crops, answers, strict=True):
            self._ahead[_key(crop)] = answer

    def __call__(self, crop: np.ndarray, words: Sequence[object] | None = None) -> T:
        # As a table recogniser it is offered the text layer's words: the VLM reads text from the
        # pixels together with the structure, so they go unused.
        answer = self._ahead.pop(_key(crop), None)
        if answer is None:
            (answer,) = self.reader.submit([(Image.fromarray(crop), self.block_type)])
        return self.read(answer.result(), crop)
