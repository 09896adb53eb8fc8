"""S3 event notifications (``{"Records": [{"eventSource": "aws:s3", ...}]}``) and the ``s3:TestEvent``
S3 sends when a notification is configured, invoking the function directly.

Object keys arrive URL-encoded with ``+`` for spaces: :attr:`S3Object.key` is the one place that
decodes them, so no call site ever sees (or double-decodes) an encoded key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote_plus

from ...service.upload_jobs import ObjectRef
from .contract import DirectObjectEvents, Unwrap
from .views import DictView, RecordsEvent


class S3Object(DictView):
    @property
    def key(self) -> str:
        """The object key, URL-decoded ("my+scan+%C3%BC.png" -> "my scan ü.png")."""
        return unquote_plus(str(self._data["key"]))

    @property
    def size(self) -> int | None:
        value = self._data.get("size")
        return int(value) if value is not None else None

    @property
    def etag(self) -> str | None:
        return self._data.get("eTag") or self._data.get("etag")


class S3EventRecord(DictView):
    @property
    def event_name(self) -> str:
        return str(self._data.get("eventName", ""))

    @property
    def is_object_created(self) -> bool:
        return self.event_name.startswith("ObjectCreated:")

    @property
    def bucket_name(self) -> str:
        return str(self._data["s3"]["bucket"]["name"])

    @property
    def object(self) -> S3Object:
        return S3Object(self._data["s3"]["object"])

    def ref(self) -> ObjectRef:
        obj = self.object
        return ObjectRef(self.bucket_name, obj.key, obj.size, obj.etag)


class S3Event(RecordsEvent):
    EVENT_SOURCE = "aws:s3"

    @property
    def records(self) -> Iterator[S3EventRecord]:
        for record in self.raw_records():
            yield S3EventRecord(record)


def is_test_event(data: Mapping[str, Any]) -> bool:
    return data.get("Event") == "s3:TestEvent"


class S3Notifications(DirectObjectEvents):
    name = "s3"

    def infer(self, event: Mapping[str, Any]) -> bool:
        return S3Event.matches(event) or is_test_event(event)

    def object_refs(self, event: Mapping[str, Any], unwrap: Unwrap) -> list[ObjectRef]:
        if is_test_event(event):
            return []  # nothing was created: the notification was just configured
        return [record.ref() for record in S3Event(event).records if record.is_object_created]
