"""A chat turn decoded by the VLM engine, seen from the event loop: its answer, its text piece by
piece as it is decoded (a streamed answer), its deadline and its caller.

The turn waits for the engine in a worker thread holding a place in the VLM's batching queue
(``DOCFN_VLM_MAX_QUEUE``; 429 beyond). The engine, not the service's inference slot, serialises the
forward passes: requests waiting here together are what it batches, so they wait until their
deadline rather than being refused behind the page tasks' queue. While it waits, and while its
answer streams, the loop listens to the caller's connection: one that has gone (HTTP disconnect)
cancels its sequence, which leaves the running batch at the next decoder step, as one past its
deadline does (the engine checks both between steps).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from ...core.errors import ClientGone, DeadlineExceeded
from ...service.service import DocService
from .chat_request import ChatTurn

if TYPE_CHECKING:  # the model module imports tokenizers: only where the VLM is served
    from ...tasks.vlm.model import Generation

TASK = "vlm"
# How long the caller watch waits after an unexpected message before listening again.
POLL_SECONDS = 0.25


class ChatDecoding:
    def __init__(
        self,
        service: DocService,
        workers: Executor,
        turn: ChatTurn,
        timeout: float,
        caller: Request,
        stream: bool = False,
    ) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.cancelled = threading.Event()
        self._caller = caller
        self._pieces: asyncio.Queue[str] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def on_text(piece: str) -> None:  # in the engine's worker thread
            loop.call_soon_threadsafe(self._pieces.put_nowait, piece)

        def run() -> Generation:
            task, _ = service.loaded(TASK)
            engine = task.engine  # type: ignore[attr-defined]
            return engine.generate(
                turn.image,
                turn.prompt,
                turn.knobs,
                turn.max_tokens,
                self.deadline,
                system=turn.system,
                skip_special_tokens=turn.skip_special_tokens,
                text_before_image=turn.text_before_image,
                stop=turn.stop,
                on_text=on_text if stream else None,
                cancelled=self.cancelled,
            )

        self.answer: asyncio.Future[Generation] = asyncio.wrap_future(
            service.vlm_admission.submit(workers, run)
        )
        # A turn that gave up (deadline, caller gone) no longer reads its answer's error: retrieve it
        # here so asyncio does not log it as never retrieved.
        self.answer.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._watch = asyncio.ensure_future(self._watch_caller())

    async def result(self) -> Generation:
        """The whole answer (DeadlineExceeded past the deadline, ClientGone once the caller left)."""
        await self._until(self.answer)
        return self.answer.result()

    async def next_piece(self) -> str | None:
        """The next piece of the answer's text as decoded, None once all were given (then
        :attr:`answer` is done); raises the answer's error."""
        while True:
            if not self._pieces.empty():
                return self._pieces.get_nowait()
            if self.answer.done():
                # Pieces are queued on the loop before the answer completes: none are left behind.
                self.answer.result()
                return None
            getter = asyncio.ensure_future(self._pieces.get())
            try:
                await self._until(getter, self.answer)
            finally:
                if not getter.done():
                    getter.cancel()
            if getter.done() and not getter.cancelled():
                return getter.result()

    def cancel(self) -> None:
        """The caller is gone: the sequence leaves the batch at the next step."""
        self.cancelled.set()

    def stop_watching(self) -> None:
        """The response is done (a whole answer: once sent; a stream: once it ended): nothing more
        to watch the connection for."""
        self._watch.cancel()

    async def _watch_caller(self) -> None:
        """Cancel the sequence when the connection's ``http.disconnect`` arrives. (Waiting on receive
        rather than polling ``request.is_disconnected()``: behind an ``@app.middleware`` the poll
        never sees the disconnect.)"""
        while (await self._caller.receive())["type"] != "http.disconnect":
            await asyncio.sleep(POLL_SECONDS)  # a stray body message: nothing to wait on
        self.cancel()

    async def _until(self, *awaitables: Awaitable[Any]) -> None:
        """Wait for the first of ``awaitables``, the deadline, or the caller leaving."""
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self.cancel()
                raise DeadlineExceeded(
                    f"the VLM did not answer within {self.timeout:g} s (DOCFN_VLM_TIMEOUT_SECONDS);"
                    " ask for fewer max_tokens"
                )
            watching = [] if self._watch.done() else [self._watch]
            done, _ = await asyncio.wait(
                [*awaitables, *watching], timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if any(awaited is not self._watch for awaited in done):
                return
            if self.cancelled.is_set():
                raise ClientGone("the caller disconnected before the VLM's answer was complete")
