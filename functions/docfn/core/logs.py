"""Structured JSON logging: one line per request, plus ordinary log records as JSON."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


_emf = {"enabled": False}


def configure(level: str = "INFO", *, emf: bool = False) -> None:
    _emf["enabled"] = emf
    root = logging.getLogger("docfn")
    if any(getattr(h, "_docfn", False) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._docfn = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False


REQUEST_LOG = logging.getLogger("docfn.request")


def log_request(**fields: Any) -> None:
    """The one structured line per request (request id, task, input hash, bytes, pages, cache, cold,
    phase timings, status); in embedded metric format too when configured (``DOCFN_METRICS_EMF``,
    ``docfn.core.emf``)."""
    if _emf["enabled"] and isinstance(fields.get("task"), str) and "status" in fields:
        try:
            from .emf import emf_members

            fields = {**fields, **emf_members(fields)}
        except Exception:  # metrics never fail a request: the line goes out without them
            logging.getLogger("docfn.metrics").exception("embedded metrics could not be added")
    REQUEST_LOG.info("request", extra={"fields": fields})
