"""The one place the fields of docfn's structured request log line are assembled.

Every adapter (HTTP, jobs run by events, Lambda invocations) logs one JSON line per unit of work with
the same names: request id, task, status, duration, and for work that ran a task the input hash,
bytes, pages, cache hit, cold and phase timings.
"""

from __future__ import annotations

import time
from typing import Any

from ..core import logs
from ..core.labels import task_label
from .outcome import Outcome

REQUESTED_TASK_CHARS = 64


def request_fields(
    *,
    request_id: str | None,
    task: str | None,
    status: int | None = None,
    started: float | None = None,
    outcome: Outcome | None = None,
    error: str | None = None,
    **context: Any,
) -> dict[str, Any]:
    """The log fields of one unit of work; ``started`` is its ``time.perf_counter()`` at the start."""
    fields: dict[str, Any] = {"request_id": request_id, "task": task}
    if status is not None:
        fields["status"] = status
    if started is not None:
        fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    fields.update({k: v for k, v in context.items() if v is not None})
    if outcome is not None:
        fields.update(
            {
                "input_sha256": outcome.input_sha256,
                "bytes": outcome.bytes,
                "pages": outcome.pages,
                "cache_hit": outcome.cached,
                "cold": outcome.cold,
                "phases_ms": {k: round(v * 1000, 1) for k, v in outcome.timings.items()},
            }
        )
    if error:
        fields["error"] = error
    return fields


def log_request(**kwargs: Any) -> None:
    """Emit the request line (arguments as :func:`request_fields`).

    Its ``task`` is one of docfn's tasks or ``"unknown"`` (it is an EMF dimension on Lambda, and log
    searches group by it); what the caller asked for is kept beside it, cut short."""
    fields = request_fields(**kwargs)
    task = fields.get("task")
    if task is not None and task_label(task) != task:
        fields["task"] = task_label(task)
        fields["requested_task"] = str(task)[:REQUESTED_TASK_CHARS]
    logs.log_request(**fields)
