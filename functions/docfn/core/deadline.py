"""The deadline of the work the current thread does for a request, for code deep in a task that
the page loop does not hand it to (the VLM's block reads): a ``time.monotonic()`` instant or None.

The service sets it around a request's page loop (:func:`working_until`); a task's VLM calls pass
it to the engine, so a request past its deadline stops decoding rather than finishing for nobody.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CURRENT: ContextVar[float | None] = ContextVar("docfn_deadline", default=None)


def current() -> float | None:
    return _CURRENT.get()


@contextmanager
def working_until(deadline: float | None) -> Iterator[None]:
    token = _CURRENT.set(deadline)
    try:
        yield
    finally:
        _CURRENT.reset(token)
