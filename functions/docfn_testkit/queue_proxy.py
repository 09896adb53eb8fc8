"""What Knative's queue-proxy sidecar does to a pod's requests, in front of a container run with
podman: at most ``containerConcurrency`` requests reach the container at once, the rest wait in the
sidecar's queue (10 x containerConcurrency deep, as queue-proxy's breaker sizes it) and go on as
places free; past the queue, 503. Without it a test would send the container more at once than
Knative ever lets through (``containerConcurrency`` is read from the rendered manifest by the
caller).

A reverse proxy on a free loopback port (starlette + uvicorn in a thread, httpx to the container);
bodies stream both ways and a request holds its place until its response body is complete.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from .servers import free_port

# queue-proxy's breaker: queue depth 10 x containerConcurrency (knative.dev/serving cmd/queue).
QUEUE_DEPTH_FACTOR = 10
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"}


class QueueProxy:
    """Requests to ``url`` go to ``target`` (``http://127.0.0.1:PORT``), ``concurrency`` at a time."""

    def __init__(self, target: str, concurrency: int, timeout: float = 600.0) -> None:
        if concurrency < 1:
            raise ValueError("containerConcurrency 0 (unlimited) needs no queue-proxy stand-in")
        self.target = target.rstrip("/")
        self.concurrency = concurrency
        self.queue_depth = QUEUE_DEPTH_FACTOR * concurrency
        self.timeout = timeout
        self.port = free_port()
        self.in_flight = 0  # requests at the container now
        self.most_in_flight = 0
        self.waited = 0  # requests that found every place taken and queued
        self.overflowed = 0  # 503s: the queue was full
        self._waiting = 0
        self._places: asyncio.Semaphore | None = None
        self._client: httpx.AsyncClient | None = None
        app = Starlette(routes=[Route("/{path:path}", self._forward, methods=_METHODS)])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="queue-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> QueueProxy:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the queue-proxy stand-in did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    async def _forward(self, request: Request) -> Response:
        if self._places is None:  # made on the server's own event loop
            self._places = asyncio.Semaphore(self.concurrency)
            self._client = httpx.AsyncClient(timeout=self.timeout)
        assert self._client is not None
        if self._places.locked():
            if self._waiting >= self.queue_depth:
                self.overflowed += 1
                return PlainTextResponse("pending request queue full", status_code=503)
            self.waited += 1
        self._waiting += 1
        try:
            await self._places.acquire()
        finally:
            self._waiting -= 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            upstream = await self._client.send(
                self._client.build_request(
                    request.method,
                    self.target + request.url.path,
                    params=request.query_params.multi_items(),
                    headers=[(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP],
                    content=await request.body(),
                ),
                stream=True,
            )
        except BaseException:
            self._release()
            raise
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}

        released = False

        async def finish() -> None:  # once, whether the body was sent or the client left
            nonlocal released
            if not released:
                released = True
                await upstream.aclose()
                self._release()

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await finish()

        return StreamingResponse(
            body(), status_code=upstream.status_code, headers=headers, background=BackgroundTask(finish)
        )

    def _release(self) -> None:
        self.in_flight -= 1
        assert self._places is not None
        self._places.release()

    def __enter__(self) -> QueueProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
