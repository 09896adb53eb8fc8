"""Counting what runs at once: wrapped around the code under test, to observe its concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Concurrency:
    """How many calls of a function run at once, and the most ever seen."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.calls = 0
        self._lock = threading.Lock()

    def wrap(self, function: Callable[..., Any], before: Callable[[], None] = lambda: None) -> Callable:
        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.running += 1
                self.calls += 1
                self.most = max(self.most, self.running)
            try:
                before()
                return function(*args, **kwargs)
            finally:
                with self._lock:
                    self.running -= 1

        return counted
