"""A Lambda Runtime API emulator: the documented HTTP endpoints a runtime client talks to.

    GET  /2018-06-01/runtime/invocation/next            -> the next event (long poll) + headers
    POST /2018-06-01/runtime/invocation/{id}/response   -> the handler's result
    POST /2018-06-01/runtime/invocation/{id}/error      -> the handler's exception
    POST /2018-06-01/runtime/init/error                 -> the handler module failed to import
    GET  /2018-06-01/runtime/restore/next               -> SnapStart: init is done, snapshot now;
                                                           returns when "restored" (restore_release)
    POST /2018-06-01/runtime/restore/error              -> an after-restore hook failed

The real ``awslambdaric`` client (its native libcurl client for next/response/error) runs against
it in a subprocess, exactly as it does inside the image; the tests queue events and read results.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:docfn-ocr"


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent=53995c3f42cd8ad8;Sampled=0"


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The runtime client's connection drops when the test stops its process: not an error.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class Invocation:
    request_id: str
    body: bytes
    deadline_ms: int
    done: threading.Event = field(default_factory=threading.Event)
    outcome: str | None = None  # "response" | "error"
    payload: bytes = b""
    error_type: str | None = None

    def json(self) -> Any:
        return json.loads(self.payload)


class RuntimeApiEmulator:
    def __init__(self, port: int) -> None:
        self.port = port
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.in_flight: dict[str, Invocation] = {}
        self.init_errors: list[dict[str, Any]] = []
        self.next_calls = 0
        # SnapStart: restore/next was called (the snapshot point) and, once restore_release is set
        # (it is unless a test clears it to look at the process "in the snapshot"), returns.
        self.restore_requested = threading.Event()
        self.restore_release = threading.Event()
        self.restore_release.set()
        self.restore_errors: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self._server = _QuietServer(("127.0.0.1", port), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, name="runtime-api", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RuntimeApiEmulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def enqueue(self, event: Any, timeout_ms: int = 120_000) -> Invocation:
        invocation = Invocation(
            request_id=str(uuid.uuid4()),
            body=json.dumps(event).encode(),
            deadline_ms=int(time.time() * 1000) + timeout_ms,
        )
        self.pending.put(invocation)
        return invocation

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # libcurl keeps the connection alive between calls

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_GET(self) -> None:
                if self.path == f"{PREFIX}/restore/next":
                    emulator.restore_requested.set()
                    while not emulator.restore_release.wait(0.2):
                        if emulator._stopping.is_set():
                            self._reply(503, b'{"errorType":"ShuttingDown"}')
                            return
                    self._reply(200)
                    return
                if self.path != f"{PREFIX}/invocation/next":
                    self._reply(404, b'{"errorType":"NotFound"}')
                    return
                emulator.next_calls += 1
                while not emulator._stopping.is_set():  # long poll, as the real API does
                    try:
                        invocation = emulator.pending.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    emulator.in_flight[invocation.request_id] = invocation
                    self._reply(
                        200,
                        invocation.body,
                        {
                            "Content-Type": "application/json",
                            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                            "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                            "Lambda-Runtime-Trace-Id": _trace_id(),
                        },
                    )
                    return
                self._reply(503, b'{"errorType":"ShuttingDown"}')

            def do_POST(self) -> None:
                body = self._body()
                if self.path in (f"{PREFIX}/init/error", f"{PREFIX}/restore/error"):
                    errors = (
                        emulator.init_errors if self.path.endswith("init/error") else emulator.restore_errors
                    )
                    errors.append(
                        {
                            "type": self.headers.get("Lambda-Runtime-Function-Error-Type"),
                            "body": body.decode(),
                        }
                    )
                    self._reply(202, b'{"status":"OK"}')
                    return
                match = re.fullmatch(rf"{PREFIX}/invocation/([^/]+)/(response|error)", self.path)
                invocation = emulator.in_flight.pop(match.group(1), None) if match else None
                if match is None or invocation is None:
                    self._reply(400, b'{"errorType":"InvalidRequestID"}')
                    return
                invocation.outcome = match.group(2)
                invocation.payload = body
                invocation.error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
                self._reply(202, b'{"status":"OK"}')
                invocation.done.set()

        return Handler
