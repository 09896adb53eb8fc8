"""The VLM's engine: iteration-level scheduling (continuous batching, as vLLM's) on one worker thread.

The worker owns a :class:`~docfn.tasks.vlm.running.RunningBatch`. Between two decoder passes it
takes the requests queued meanwhile (up to ``max_batch`` sequences in all), prefills them together
and adds them to the batch, so a request arriving while others decode joins them at the next step;
a sequence that finishes (stop token or string, ``max_tokens``, its deadline, its caller gone)
leaves the batch, and its caller is answered, at once. When nothing is running, the first request
waits up to the window (``DOCFN_VLM_BATCH_WINDOW_MS``) for others to share its prefill.

Callers block in :meth:`VlmEngine.generate` (thread-safe), or submit several requests at once with
:meth:`VlmEngine.submit_many` (futures; they join the batch together). Image preprocessing and prompt
tokenising run in the caller's thread; only the forward passes are queued.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from PIL import Image

from ...core import metrics
from ...core.errors import BadOptions, ClientGone, DeadlineExceeded, DocfnError
from .batching import DEFAULT_MAX_BATCH, DEFAULT_WINDOW_SECONDS
from .blocks import VlmCall
from .generation import Generation, GenerationRequest
from .model import DEFAULT_SYSTEM, VlmModel
from .preprocess import VisionInput, preprocess
from .running import RunningBatch
from .running import Sequence as Running
from .sampling import SamplingKnobs
from .text_stream import TextSink


@dataclasses.dataclass(eq=False)
class _Pending:
    sequence: Running
    arrived: float
    answer: Future[Generation]


class VlmEngine:
    """One model, one worker thread that decodes the running sequences together."""

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
        self._batch = RunningBatch(model)
        self._answers: dict[Running, Future[Generation]] = {}  # the running sequences' callers

    def request(
        self,
        image: Image.Image | None,
        prompt: str,
        knobs: SamplingKnobs,
        max_tokens: int,
        deadline: float | None,
        system: str | None = None,
        skip_special_tokens: bool = True,
        text_before_image: str = "",
        *,
        stop: Sequence[str] = (),
        on_text: TextSink | None = None,
        on_token: Callable[[int], None] | None = None,
        cancelled: threading.Event | None = None,
    ) -> GenerationRequest:
        """One user turn made ready to decode (in the caller's thread): ``text_before_image``,
        ``image`` (or none), then ``prompt``, after ``system`` (None: Qwen2-VL's default system
        prompt, as its chat template adds one). The rest: see :class:`GenerationRequest`."""
        content: list[str | VisionInput] = [text_before_image] if text_before_image else []
        images = []
        if image is not None:
            images.append(preprocess(image, self.model.processor))
            content.append(images[0])
        content.append(prompt)
        ids = self.model.chat_prompt(content, system=DEFAULT_SYSTEM if system is None else system)
        return GenerationRequest(
            ids,
            images,
            max_tokens,
            knobs,
            deadline=deadline,
            skip_special_tokens=skip_special_tokens,
            stop_strings=tuple(stop),
            on_text=on_text,
            on_token=on_token,
            cancelled=cancelled,
        )

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
        *,
        stop: Sequence[str] = (),
        on_text: TextSink | None = None,
        cancelled: threading.Event | None = None,
    ) -> Generation:
        """The answer to one user turn (see :meth:`request`). ``deadline`` is a ``time.monotonic()``
        instant: past it :class:`DeadlineExceeded` (504), whether the request was still queued or
        decoding. Blocks until done."""
        request = self.request(
            image, prompt, knobs, max_tokens, deadline, system, skip_special_tokens, text_before_image,
            stop=stop, on_text=on_text, cancelled=cancelled,
        )  # fmt: skip
        return self.submit([request])[0].result()

    def submit_many(self, calls: Sequence[VlmCall], deadline: float | None) -> list[Future[Generation]]:
        """Futures of several answers, queued together so that they share a prefill and decode
        together (a page's blocks). Each future holds its :class:`Generation` with its text, or the
        error (:class:`DeadlineExceeded` past ``deadline``)."""
        requests = [
            self.request(
                call.image,
                call.prompt,
                call.knobs,
                call.max_tokens,
                deadline,
                call.system,
                call.skip_special_tokens,
            )
            for call in calls
        ]
        return self.submit(requests)

    def submit(self, requests: Sequence[GenerationRequest]) -> list[Future[Generation]]:
        """Queue prepared requests at once; each future holds its answer with its text."""
        for request in requests:  # checked alone: in the batch it would fail the others too
            if request.max_new_tokens < 1:
                raise BadOptions(f"max_tokens must be at least 1, not {request.max_new_tokens}")
        now = time.monotonic()
        pending = [_Pending(Running.of(request, self.model), now, Future()) for request in requests]
        with self._ready:
            if self._closed:
                raise RuntimeError("the VLM engine is closed")
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="docfn-vlm-engine", daemon=True)
                self._worker.start()
            self._queue.extend(pending)
            self._ready.notify()
        return [item.answer for item in pending]

    def close(self) -> None:
        """Stop the worker once nothing is queued or running (those are still answered)."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._worker is not None:
            self._worker.join()

    def _joining(self) -> list[_Pending] | None:
        """The queued requests that join the batch now. With nothing running, wait for the first
        request, then for its window to close or the batch to fill; with sequences running, take
        what is queued without waiting (None: closed and nothing left)."""
        with self._ready:
            if not self._batch:
                while not self._queue:
                    if self._closed:
                        return None
                    self._ready.wait()
                while len(self._queue) < self.max_batch:
                    remaining = self._queue[0].arrived + self.window_seconds - time.monotonic()
                    if remaining <= 0:
                        break
                    self._ready.wait(remaining)
            # A request that waits for a place in a full batch still leaves at its deadline: its
            # caller is answered now rather than when a place frees.
            now = time.monotonic()
            expired, waiting = [], []
            for pending in self._queue:
                (waiting if pending.sequence.gone(now) is None else expired).append(pending)
            self._queue = waiting
            room = self.max_batch - len(self._batch)
            joining, self._queue = expired + self._queue[:room], self._queue[room:]
            return joining

    def _run(self) -> None:
        while (joining := self._joining()) is not None:
            try:
                now = time.monotonic()
                self._answer(self._batch.leave(now))  # late or cancelled: no pass spent on them
                live = []
                for pending in joining:
                    reason = pending.sequence.gone(now)  # waited out its time in the queue
                    if reason is not None:
                        pending.sequence.finish_reason = reason
                        # Counted as one leaving the running batch is: a caller gone (or late) while
                        # its request still waited for a place is as cancelled (or late).
                        metrics.VLM_FINISHED.labels(reason).inc()
                        self._answers[pending.sequence] = pending.answer
                        self._answer([pending.sequence])
                    else:
                        self._answers[pending.sequence] = pending.answer
                        live.append(pending.sequence)
                try:
                    self._answer(self._batch.admit(live))
                except Exception as exc:  # the joining requests' prefill failed: they get the error
                    self._fail(live, exc)  # and the running batch, untouched, decodes on
                if self._batch:
                    self._answer(self._batch.step())
            except Exception as exc:  # every running caller gets the error, the worker goes on
                self._fail(list(self._answers), exc)
                self._batch = RunningBatch(self.model)

    def _fail(self, sequences: list[Running], exc: Exception) -> None:
        error = exc if isinstance(exc, DocfnError) else _failed(exc)
        for sequence in sequences:
            answer = self._answers.pop(sequence, None)
            if answer is not None and not answer.done():
                answer.set_exception(error)

    def _answer(self, finished: list[Running]) -> None:
        for sequence in finished:
            answer = self._answers.pop(sequence)
            reason = sequence.finish_reason
            if reason == "deadline":
                answer.set_exception(_late())
            elif reason == "cancelled":
                answer.set_exception(ClientGone("the caller left before the VLM's answer was complete"))
            else:
                whole = self.model.decode(sequence.output, sequence.request.skip_special_tokens)
                text = whole if sequence.text is None else sequence.text.finish(whole)
                answer.set_result(sequence.generation(text))


def _late() -> DeadlineExceeded:
    return DeadlineExceeded("the VLM's inference deadline passed before the answer was complete")


def _failed(exc: Exception) -> Exception:
    # The worker thread's traceback is kept as the cause, so the caller's log shows where it failed.
    error = RuntimeError(f"VLM batch failed: {exc}")
    error.__cause__ = exc
    return error
