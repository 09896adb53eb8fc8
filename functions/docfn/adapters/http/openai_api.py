"""The VLM's OpenAI-compatible API, as MinerU's ``http-client`` backend (mineru-vl-utils) calls a vLLM
server: ``GET /v1/models`` and ``POST /v1/chat/completions``. A thin shell over the ``vlm`` task's
batching engine: read the request (``chat_request``, in a worker thread: it decodes, and may fetch,
the image), wait for the engine's answer in a worker thread holding a place in the VLM's batching
queue within the deadline (``chat_decoding``), answer it (``chat_answer``):
``choices[0].message.content`` with ``finish_reason`` and ``usage``, or, with ``stream: true``,
server-sent ``chat.completion.chunk`` events ending in ``data: [DONE]``.

A streamed answer sends the text as the engine decodes it (``chat_decoding``). It starts with the
first piece: refusals (429 past the queue's bound, 504 past the deadline while queued) keep their
status codes rather than arriving as an event inside a 200 stream; a failure after that ends the
stream with an error event (vLLM's ``data: {"error": ...}``) and ``[DONE]``. A caller that
disconnects, streamed or not, cancels its sequence: it leaves the engine's batch at the next step.

With ``DOCFN_API_KEY`` (or ``DOCFN_API_KEY_SECRET_ARN``) set, both routes want
``Authorization: Bearer KEY`` (MinerU's client sends ``MINERU_VL_API_KEY`` so). Without a VLM pack
they answer 503 with how to build and publish one, as the task's load does.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import AsyncGenerator
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from ...core import metrics
from ...core.errors import DocfnError, NotFound, Unauthorized
from ...core.settings import Settings
from ...service.request_log import log_request
from ...service.service import DocService
from .body import http_error_code, read_body
from .chat_answer import ChatAnswer, Chunks
from .chat_decoding import ChatDecoding
from .chat_request import ChatTurn, parse_chat
from .url_inputs import Fetch

if TYPE_CHECKING:  # the model module imports tokenizers: only where the VLM is served
    from ...tasks.vlm.model import Generation

TASK = "vlm"


def add_openai_routes(
    app: FastAPI,
    service: DocService,
    settings: Settings,
    workers: Executor,
    api_key: str | None,
    fetch: Fetch | None = None,
) -> None:
    """``workers``: the threads requests wait in (one each, as many as the VLM queue's bound);
    ``fetch``: how an http(s) ``image_url`` is read (the app's URL inputs)."""

    def authorise(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise Unauthorized("this function wants Authorization: Bearer <its API key>")

    def model_id() -> str:
        return service.task(TASK).refs["model"].pack_id

    @app.get("/v1/models", tags=["OpenAI"], summary="The VLM this function serves (vLLM's model list)")
    async def models(request: Request) -> JSONResponse:
        authorise(request)
        # Loads the pack: MinerU's client asks for the model first, so its load is the cold start,
        # and a function without a pack says so here (503) rather than at the first page.
        await asyncio.to_thread(service.loaded, TASK)
        model = {"id": model_id(), "object": "model", "created": int(time.time()), "owned_by": "docfn"}
        return JSONResponse({"object": "list", "data": [model]})

    @app.post("/v1/chat/completions", tags=["OpenAI"], summary="One chat turn to the VLM (MinerU's client)")
    async def chat_completions(request: Request) -> Response:
        started = time.perf_counter()
        status, error, turn, answer = 500, None, None, None
        streaming = False
        decoding: ChatDecoding | None = None
        try:
            authorise(request)
            given = await read_body(request, settings.max_body_bytes)
            turn = await run_in_threadpool(
                parse_chat,
                given.data,
                service.limits,
                settings.max_body_bytes,
                settings.vlm_max_tokens,
                fetch,
            )
            if turn.model not in (None, model_id()):
                raise NotFound(
                    f"model {turn.model!r} is not served here; GET /v1/models lists {model_id()!r}"
                )
            decoding = ChatDecoding(
                service, workers, turn, settings.vlm_timeout_seconds, request, stream=turn.stream
            )
            headers = {"X-Request-Id": _rid(request)}
            if turn.stream:
                # The first piece (or the whole answer) before the 200: refusals (429, 504 while
                # queued) keep their status codes rather than arriving inside a 200 stream.
                first = await decoding.next_piece()
                headers["Cache-Control"] = "no-cache"
                streaming = True
                return DecodingStream(
                    decoding,
                    stream(decoding, first, Chunks(model_id(), turn.include_usage), turn, request, started),
                    headers=headers,
                )
            generation = await decoding.result()
            answer = _answer(generation, model_id(), turn)
            status = 200
            return JSONResponse(answer.completion(), headers=headers)
        except DocfnError as exc:
            status, error = exc.status, exc.code
            metrics.count_error(TASK, exc.code)
            raise
        except StarletteHTTPException as exc:
            # Starlette's refusal of a malformed multipart body is the client's 400: logged and
            # counted as that, not as a 500 (schemathesis found it logged as one).
            status, error = exc.status_code, http_error_code(exc.status_code)
            metrics.count_error(TASK, error)
            raise
        finally:
            if not streaming:  # a stream keeps watching its caller, and is logged, until it ends
                if decoding is not None:
                    decoding.stop_watching()
                done(request, started, status, error, turn, answer)

    def done(
        request: Request,
        started: float,
        status: int,
        error: str | None,
        turn: ChatTurn | None,
        answer: ChatAnswer | None,
    ) -> None:
        metrics.count_request(TASK, status, time.perf_counter() - started)
        log_request(
            request_id=_rid(request),
            task=TASK,
            status=status,
            started=started,
            error=error,
            route="chat.completions",
            # As received, so a caller's knobs can be checked against what the server saw.
            params=turn.received if turn is not None else None,
            prompt_tokens=answer.prompt_tokens if answer is not None else None,
            completion_tokens=answer.completion_tokens if answer is not None else None,
            finish_reason=answer.finish_reason if answer is not None else None,
        )

    async def stream(
        decoding: ChatDecoding,
        first: str | None,
        chunks: Chunks,
        turn: ChatTurn,
        request: Request,
        started: float,
    ) -> AsyncGenerator[bytes, None]:
        """The answer's events as the engine decodes it. A failure once the stream began (the
        deadline, the engine) ends it with an error event; a caller leaving cancels its sequence."""
        status, error, answer = 200, None, None
        try:
            yield chunks.role()
            piece = first
            while piece is not None:
                if piece:
                    yield chunks.content(piece)
                piece = await decoding.next_piece()
            answer = _answer(decoding.answer.result(), chunks.model, turn)
            for event in chunks.end(answer):
                yield event
        except DocfnError as exc:
            status, error = exc.status, exc.code
            metrics.count_error(TASK, exc.code)
            for event in chunks.error(exc.status, exc.code, exc.message):
                yield event
        finally:
            decoding.cancel()  # no-op once answered; otherwise the caller left mid-stream
            done(request, started, status, error, turn, answer)


class DecodingStream(StreamingResponse):
    """A streamed answer that cancels its sequence as soon as its caller leaves.

    Two things make that prompt. The decoding's caller watch stays on for the whole stream: on the
    connection's ``http.disconnect`` it cancels the sequence itself, whatever the stream is doing
    (a stretch of tokens with no text sends nothing, and uvicorn's send to a gone client returns
    quietly, so the writes never tell). And when the response ends, however it ends, the sequence is
    cancelled and the events' generator closed here: Starlette's disconnect listener cancels the
    body's task, and when that lands in a send rather than inside the generator, the generator is
    left suspended at its ``yield``, its ``finally`` run only whenever it is garbage-collected.
    """

    def __init__(
        self, decoding: ChatDecoding, events: AsyncGenerator[bytes, None], headers: dict[str, str]
    ) -> None:
        super().__init__(events, media_type="text/event-stream", headers=headers)
        self._decoding = decoding
        self._events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._decoding.cancel()  # no-op once answered
            self._decoding.stop_watching()
            await self._events.aclose()  # runs the stream's finally (its log) now, not at GC


def _answer(generation: Generation, model: str, turn: ChatTurn) -> ChatAnswer:
    """The engine already ended the text before any stop string; ``cut_at`` keeps that true."""
    return ChatAnswer.of(
        generation.text, generation.finish_reason, generation.prompt_tokens, len(generation.token_ids), model
    ).cut_at(turn.stop)


def _rid(request: Request) -> str:
    return getattr(request.state, "request_id", None) or uuid.uuid4().hex
