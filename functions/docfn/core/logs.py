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


# CloudWatch embedded metric format: on Lambda the request line itself carries the metrics, so
# CloudWatch extracts them from the log with no agent, no API call and no second line.
EMF_NAMESPACE = "docfn"
EMF_METRICS = (
    ("Requests", "Count"),
    ("Errors", "Count"),
    ("ServerErrors", "Count"),
    ("Duration", "Milliseconds"),
    ("CacheHits", "Count"),
    ("ColdStarts", "Count"),
)
_emf = {"enabled": False}


def emf_block(fields: dict[str, Any]) -> dict[str, Any]:
    """The EMF members of a request line: ``_aws`` metadata plus one value per metric, by task."""
    status = int(fields.get("status") or 0)
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": EMF_NAMESPACE,
                    "Dimensions": [["task"]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, unit in EMF_METRICS],
                }
            ],
        },
        "Requests": 1,
        "Errors": int(status >= 400),
        "ServerErrors": int(status >= 500),
        "Duration": float(fields.get("duration_ms") or 0.0),
        "CacheHits": int(bool(fields.get("cache_hit"))),
        "ColdStarts": int(bool(fields.get("cold"))),
    }


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
    phase timings, status); in embedded metric format too when configured (``DOCFN_METRICS_EMF``)."""
    if _emf["enabled"] and isinstance(fields.get("task"), str) and "status" in fields:
        fields = {**fields, **emf_block(fields)}
    REQUEST_LOG.info("request", extra={"fields": fields})
