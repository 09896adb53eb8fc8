"""Debian's chromium under Playwright, and the page at ``/``'s "read in this browser" mode driven
from Python: shared by the browser OCR tests and the ``browser_ocr`` benchmark."""

from __future__ import annotations

import functools
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

CHROMIUM = "/usr/bin/chromium"
# Playwright's own browser download is not reachable: Debian's chromium, kept off the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``), closed afterwards."""
    if shutil.which(CHROMIUM) is None:
        raise RuntimeError("chromium is not installed; scripts/test installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# What a host sends for a cross-origin isolated page (the README `docfn export-web` writes).
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}


class _StaticHandler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
    }
    headers_for: Callable[[str], dict[str, str]] = staticmethod(lambda path: {})

    def end_headers(self) -> None:
        for name, value in self.headers_for(self.path.split("?", 1)[0]).items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # http.server's name
        pass


@contextmanager
def static_host(directory: Path, headers_for: Callable[[str], dict[str, str]]) -> Iterator[str]:
    """A static host for ``directory`` (Python's http.server, on loopback in a thread) that adds
    ``headers_for(url_path)`` to each response; yields its base URL."""
    handler = type("Handler", (_StaticHandler,), {"headers_for": staticmethod(headers_for)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class BrowserRead:
    """One page read in the browser: the page's result (``window.docfnBrowserResult``) or its
    error, the status line, and the requests the page made meanwhile (method, URL)."""

    result: dict[str, Any] | None
    status: str
    state: str
    requests: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def read_in_browser(page: Any, image: Path, timeout_ms: int = 600_000) -> BrowserRead:
    """Drop ``image`` on the open page, tick "read in this browser", run, wait for the result."""
    requests: list[tuple[str, str]] = []

    def seen(request: Any) -> None:
        requests.append((request.method, request.url))

    page.evaluate("() => { delete document.body.dataset.state; window.docfnBrowserResult = null; }")
    page.on("request", seen)
    try:
        page.set_input_files("#file", str(image))
        if not page.is_checked("#local"):
            page.check("#local")
        started = time.perf_counter()
        page.click("#go")
        page.wait_for_selector("body[data-state=done], body[data-state=error]", timeout=timeout_ms)
        seconds = time.perf_counter() - started
    finally:
        page.remove_listener("request", seen)
    return BrowserRead(
        result=page.evaluate("window.docfnBrowserResult"),
        status=page.locator("#status").inner_text(),
        state=page.evaluate("document.body.dataset.state"),
        requests=requests,
        seconds=seconds,
    )


def box_iou(a: list[float], b: list[float]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def matched_lines(reference: list[dict[str, Any]], other: list[dict[str, Any]], min_iou: float = 0.9) -> int:
    """How many of ``reference``'s lines have a line in ``other`` whose bbox overlaps it by at least
    ``min_iou`` (IoU)."""
    return sum(1 for line in reference if any(box_iou(line["bbox"], o["bbox"]) >= min_iou for o in other))
