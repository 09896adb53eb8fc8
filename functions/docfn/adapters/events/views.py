"""Read-only views over raw event dicts (after Powertools' data classes): properties read the raw
dict, nothing is copied or mutated, and a value that needs decoding is decoded in one property."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from ...core.errors import BadInput


class DictView:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    @property
    def raw(self) -> Mapping[str, Any]:
        return self._data

    def get(self, name: str, default: Any = None) -> Any:
        return self._data.get(name, default)


class RecordsEvent(DictView):
    """``{"Records": [...]}`` whose records come from ``EVENT_SOURCE`` (``aws:s3``, ``aws:sqs``)."""

    EVENT_SOURCE: ClassVar[str]

    @classmethod
    def matches(cls, data: Mapping[str, Any]) -> bool:
        records = data.get("Records")
        return (
            bool(records) and isinstance(records, list) and records[0].get("eventSource") == cls.EVENT_SOURCE
        )

    def raw_records(self) -> Iterator[Mapping[str, Any]]:
        yield from self._data.get("Records", [])


def load_json(payload: Any) -> Any:
    """Bytes or a JSON string (an SQS body, a CloudEvent's string data) -> parsed JSON."""
    if isinstance(payload, bytes | bytearray):
        payload = payload.decode("utf-8")
    if isinstance(payload, str):
        try:
            return json.loads(payload)
        except ValueError as exc:
            raise BadInput(f"the event is not JSON: {exc}") from None
    return payload
