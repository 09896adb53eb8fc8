"""Bounded values for every metric label and EMF dimension a caller can influence.

A Prometheus label value is a new time series, and on Lambda an EMF dimension value is a new
CloudWatch metric (billed per metric per month): a caller's path, method or option must never
become one. Every value here comes from a fixed set; anything else is counted under one catch-all
("unknown" for tasks, "other" for codes and statuses), so 300 requests to made-up paths add one
series, not 300. The caller's own words stay in the log line (``requested_task``), not in metrics.
"""

from __future__ import annotations

from .errors import DocfnError
from .settings import ALL_TASKS

UNKNOWN_TASK = "unknown"
OTHER = "other"
# The statuses the app answers with (SPEC's error table plus the routes' successes); any other is
# counted by its class ("2xx" … "5xx"), which is still a fixed set.
STATUSES = frozenset(
    {200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 499, 500, 502, 503, 504}
)
# The codes of the HTTP layer's own refusals (docfn.adapters.http.body.http_error_code).
HTTP_CODES = frozenset({"bad_input", "not_found", "method_not_allowed", "http_error"})
# The codes of error classes defined outside docfn.core.errors: the set must not depend on which
# modules happen to be imported yet.
NAMED_CODES = frozenset(
    {
        "upload_size_mismatch",
        "unsupported_source",
        "pack_verification_failed",
        "job_in_progress",
        "file_hash_mismatch",
    }
)


def task_label(task: object) -> str:
    """``task`` when it is one of docfn's tasks, else ``"unknown"``."""
    return task if isinstance(task, str) and task in ALL_TASKS else UNKNOWN_TASK


def status_label(status: object) -> str:
    """The status as text when it is one the app answers with, else its class (``"4xx"``)."""
    try:
        code = int(status)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return OTHER
    if code in STATUSES:
        return str(code)
    return f"{code // 100}xx" if 100 <= code <= 599 else OTHER


def _error_codes() -> frozenset[str]:
    codes: set[str] = set()
    pending: list[type[DocfnError]] = [DocfnError]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    return frozenset(codes)


def error_label(code: object) -> str:
    """An error code docfn defines (its error classes, the HTTP layer's), else ``"other"``."""
    if not isinstance(code, str):
        return OTHER
    if code in HTTP_CODES or code in NAMED_CODES or code in _error_codes():
        return code
    return OTHER
