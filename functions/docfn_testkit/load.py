"""A closed-loop load generator for the fault tests: N client threads, each with its own keep-alive
connection, post numbered inputs to one server and record every reply."""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    number: int  # which input was sent
    status: int
    seconds: float
    body: dict[str, Any] | None
    retry_after: str | None
    sent_sha256: str


class Load:
    """``total`` requests from ``clients`` threads; ``pick(i)`` says which input request ``i`` sends."""

    def __init__(
        self,
        url: str,
        pick: Callable[[int], int],
        page: Callable[[int], bytes],
        *,
        total: int,
        clients: int,
        path: str = "/v1/ocr",
        timeout: float = 120.0,
        backoff: float = 0.0,
    ) -> None:
        self.url, self.pick, self.page, self.path = url, pick, page, path
        self.backoff = backoff  # seconds a client waits after a refusal (429/503) before its next try
        self.total, self.clients, self.timeout = total, clients, timeout
        self.replies: list[Reply] = []
        self._lock = threading.Lock()
        self._next = itertools.count()
        self._threads: list[threading.Thread] = []
        self.failures: list[BaseException] = []

    @property
    def done(self) -> int:
        return len(self.replies)

    @property
    def running(self) -> bool:
        """Some client thread is still sending."""
        return any(thread.is_alive() for thread in self._threads)

    def start(self) -> Load:
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout: float = 600) -> list[Reply]:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "the load did not finish"
        assert not self.failures, f"client errors (connection refused, reset, timeout): {self.failures[:3]}"
        return self.replies

    def run(self) -> list[Reply]:
        return self.start().join()

    def _client(self) -> None:
        # The standard library's keep-alive connection: the lightest client, so that on a 2-CPU
        # machine the load generator leaves the CPU to the server it measures.
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=self.timeout
        )
        try:
            while (index := next(self._next)) < self.total:
                number = self.pick(index)
                data = self.page(number)
                started = time.perf_counter()
                try:
                    connection.request("POST", self.path, body=data, headers={"content-type": "image/png"})
                    response = connection.getresponse()
                    raw = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    with self._lock:
                        self.failures.append(exc)
                    connection.close()
                    continue
                seconds = time.perf_counter() - started
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                reply = Reply(
                    number,
                    response.status,
                    seconds,
                    body,
                    response.getheader("retry-after"),
                    hashlib.sha256(data).hexdigest(),
                )
                with self._lock:
                    self.replies.append(reply)
                if reply.status in (429, 503) and self.backoff:
                    time.sleep(self.backoff)
        finally:
            connection.close()


def statuses(replies: list[Reply]) -> dict[int, int]:
    return dict(sorted(Counter(r.status for r in replies).items()))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank: p99 of 200 values is the 198th smallest."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def figure(name: str, value: object) -> None:
    """A measured figure for docs/faults.md: printed (pytest -s) as ``FIGURE name: value``."""
    print(f"FIGURE {name}: {value}")
