"""What the summarize tests feed it: a short Markdown article with headed sections, and a real
OpenAI-compatible chat endpoint on a local socket standing in for an LLM server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ARTICLE = """# Solar power

Solar panels turn sunlight into electricity. Panels on roofs feed homes during the day.
Cheap panels made solar power the fastest growing source of electricity.

## Storage

Batteries store the energy of the day for the night. Storage makes solar power available when the sun is down.
Grid batteries also steady the frequency of the network.

## Costs

The price of panels fell by ninety percent in ten years. Installation and permits are now most of the cost.
Cheaper panels and batteries keep lowering the cost of electricity.
"""


class ChatServer:
    """A real OpenAI-compatible endpoint on a local socket: answers /v1/chat/completions with a fixed
    summary, or fails with ``fail`` as its status; records the requests it got."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail: int | None = None
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                owner.requests.append({"path": self.path, "auth": self.headers.get("authorization"), **body})
                if owner.fail:
                    self.send_response(owner.fail)
                    self.end_headers()
                    self.wfile.write(b"upstream unavailable")
                    return
                answer = {"choices": [{"message": {"role": "assistant", "content": owner.answer}}]}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.answer = "Solar power grows because panels got cheap. Batteries store it for the night."
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
