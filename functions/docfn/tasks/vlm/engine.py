"""The VLM's batching queue: requests that arrive within a window share forward passes.

As the reference deployment's 200 ms queue: the first request waiting opens a window
(``DOCFN_VLM_BATCH_WINDOW_MS``); when it closes, or ``max_batch`` requests wait, one worker thread
decodes them together with :meth:`VlmModel.generate_batch` (one vision pass for all their crops, one
left-padded prefill, one decoder step per token for the sequences still running). Requests that
arrive while a batch decodes wait for the next one, whose window has then usually closed already.

Callers block in :meth:`VlmEngine.generate` (thread-safe) until their own answer is ready. Image
preprocessing and prompt tokenising run in the caller's thread; only the forward passes are queued.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

from PIL import Image

from ...core import metrics
from ...core.errors import BadOptions, DeadlineExceeded, DocfnError
from .batching import DEFAULT_MAX_BATCH, DEFAULT_WINDOW_SECONDS
from .model import DEFAULT_SYSTEM, Generation, GenerationRequest, VlmModel
from .preprocess import VisionInput, preprocess
from .sampling import SamplingKnobs


@dataclass
class _Pending:
    request: GenerationRequest
    arrived: float
    answer: Future[Generation]


class VlmEngine:
    """One model, one worker thread that runs the queued requests' forward passes in batches."""

    def __init__(
        self,
        model: VlmModel,
        *,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        if window_seconds < 0 or max_batch < 1:
            raise ValueError(f"window {window_seconds} s and max batch {max_batch}: need >= 0 and >= 1")
        self.model = model
        self.window_seconds = window_seconds
        self.max_batch = max_batch
        self._queue: list[_Pending] = []
        self._ready = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closed = False

    def generate(
        self,
        image: Image.Image | None,
        prompt: str,
        knobs: SamplingKnobs,
        max_tokens: int,
        deadline: float | None,
        system: str | None = None,
        skip_special_tokens: bool = True,
        text_before_image: str = "",
    ) -> Generation:
        """The answer to one user turn: ``text_before_image``, ``image`` (or none), then ``prompt``,
        after ``system`` (None: Qwen2-VL's default system prompt, as its chat template adds one).
        ``deadline`` is a ``time.monotonic()`` instant: past it :class:`DeadlineExceeded` (504),
        whether the request was still queued or decoding. Blocks until done."""
        content: list[str | VisionInput] = [text_before_image] if text_before_image else []
        images = []
        if image is not None:
            images.append(preprocess(image, self.model.processor))
            content.append(images[0])
        content.append(prompt)
        ids = self.model.chat_prompt(content, system=DEFAULT_SYSTEM if system is None else system)
        request = GenerationRequest(ids, images, max_tokens, knobs, deadline=deadline)
        answer = self._submit(request).result()
        if answer.finish_reason == "deadline":
            raise _late()
        text = self.model.decode(answer.token_ids, skip_special_tokens=skip_special_tokens)
        return dataclasses.replace(answer, text=text)

    def _submit(self, request: GenerationRequest) -> Future[Generation]:
        if request.max_new_tokens < 1:  # checked alone: in the batch it would fail the others too
            raise BadOptions(f"max_tokens must be at least 1, not {request.max_new_tokens}")
        pending = _Pending(request, time.monotonic(), Future())
        with self._ready:
            if self._closed:
                raise RuntimeError("the VLM engine is closed")
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="docfn-vlm-batcher", daemon=True)
                self._worker.start()
            self._queue.append(pending)
            self._ready.notify()
        return pending.answer

    def close(self) -> None:
        """Stop the worker once the queue is empty (requests already queued are still answered)."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._worker is not None:
            self._worker.join()

    def _next_batch(self) -> list[_Pending] | None:
        """Wait for the first request, then for its window to close or the batch to fill."""
        with self._ready:
            while not self._queue:
                if self._closed:
                    return None
                self._ready.wait()
            while len(self._queue) < self.max_batch:
                remaining = self._queue[0].arrived + self.window_seconds - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            now = time.monotonic()
            live = []
            for pending in batch:
                deadline = pending.request.deadline
                if deadline is not None and now >= deadline:
                    pending.answer.set_exception(_late())  # waited out its time in the queue
                else:
                    live.append(pending)
            if not live:
                continue
            metrics.VLM_BATCH_SIZE.observe(len(live))
            try:
                answers = self.model.generate_batch([pending.request for pending in live])
            except Exception as exc:  # every caller of the batch gets the error, the worker goes on
                for pending in live:
                    pending.answer.set_exception(exc if isinstance(exc, DocfnError) else _failed(exc))
                continue
            for pending, answer in zip(live, answers, strict=True):
                pending.answer.set_result(answer)


def _late() -> DeadlineExceeded:
    return DeadlineExceeded("the VLM's inference deadline passed before the answer was complete")


def _failed(exc: Exception) -> Exception:
    # The worker thread's traceback is kept as the cause, so the caller's log shows where it failed.
    error = RuntimeError(f"VLM batch failed: {exc}")
    error.__cause__ = exc
    return error
