"""One overall deadline for blocking work that has no deadline of its own (a URL fetch: DNS
resolution, each redirect hop's connect and read, the body).

``socket.getaddrinfo`` takes no timeout and an HTTP client's timeouts bound each read, not their sum,
so the work runs in a daemon thread and the caller waits for it at most ``seconds``. Past the
deadline the caller gets ``late()`` at once; the abandoned thread is told to stop (``Deadline.passed``)
and ends by its own per-call timeouts, which are never longer than the time that was left.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Deadline:
    seconds: float
    at: float = field(init=False)
    abandoned: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.at = time.monotonic() + self.seconds

    def left(self) -> float:
        """Seconds left (never below a millisecond: a zero timeout means "none" to some clients)."""
        return max(self.at - time.monotonic(), 0.001)

    @property
    def passed(self) -> bool:
        return self.abandoned.is_set() or time.monotonic() >= self.at


@dataclass
class _Outcome(Generic[T]):
    value: T | None = None
    error: BaseException | None = None


def within(seconds: float, work: Callable[[Deadline], T], late: Callable[[], Exception]) -> T:
    """``work(deadline)``'s result, or ``late()`` raised once ``seconds`` have passed."""
    deadline = Deadline(seconds)
    outcome: _Outcome[T] = _Outcome()
    done = threading.Event()
    context = contextvars.copy_context()  # the request's id and log fields follow the work

    def run() -> None:
        try:
            outcome.value = context.run(work, deadline)
        except BaseException as exc:  # handed to the caller, who raises it
            outcome.error = exc
        finally:
            done.set()

    threading.Thread(target=run, name="deadline-work", daemon=True).start()
    if not done.wait(seconds):
        deadline.abandoned.set()
        raise late()
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]
