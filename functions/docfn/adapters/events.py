"""Typed, read-only views over the raw event dicts that announce an upload (after Powertools).

Shapes understood, wherever they come from (Lambda directly, an SQS message body, a CloudEvent
from Knative Eventing):

- an S3 event notification (``{"Records": [{"eventSource": "aws:s3", "s3": {...}}]}``), whose
  object keys are URL-encoded with ``+`` for spaces: :attr:`S3Object.key` is the ONE place that
  decodes them, so no call site ever sees (or double-decodes) an encoded key;
- the EventBridge ``Object Created`` event (``detail.object.key`` arrives as written, not encoded);
- the ``s3:TestEvent`` S3 sends when a notification is configured (nothing to do);
- a CloudEvent (structured mode: ``specversion`` + ``data``/``data_base64``) wrapping any of these.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote_plus

from ..core.errors import BadInput
from ..core.jobs import ObjectRef


class DictView:
    """A read-only wrapper: properties read the raw dict, nothing is copied or mutated."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    @property
    def raw(self) -> Mapping[str, Any]:
        return self._data

    def get(self, name: str, default: Any = None) -> Any:
        return self._data.get(name, default)


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


class S3Event(DictView):
    @staticmethod
    def matches(data: Mapping[str, Any]) -> bool:
        records = data.get("Records")
        return bool(records) and isinstance(records, list) and records[0].get("eventSource") == "aws:s3"

    @property
    def records(self) -> Iterator[S3EventRecord]:
        for record in self._data.get("Records", []):
            yield S3EventRecord(record)


class S3TestEvent(DictView):
    @staticmethod
    def matches(data: Mapping[str, Any]) -> bool:
        return data.get("Event") == "s3:TestEvent"


class EventBridgeObjectCreated(DictView):
    @staticmethod
    def matches(data: Mapping[str, Any]) -> bool:
        return data.get("source") == "aws.s3" and data.get("detail-type") == "Object Created"

    @property
    def bucket_name(self) -> str:
        return str(self._data["detail"]["bucket"]["name"])

    @property
    def key(self) -> str:
        # EventBridge carries the key as written (unlike S3 notifications): no decoding here.
        return str(self._data["detail"]["object"]["key"])

    def ref(self) -> ObjectRef:
        obj = self._data["detail"]["object"]
        size = obj.get("size")
        return ObjectRef(self.bucket_name, self.key, int(size) if size is not None else None, obj.get("etag"))


class SqsRecord(DictView):
    @property
    def message_id(self) -> str:
        return str(self._data["messageId"])

    @property
    def body(self) -> str:
        return str(self._data.get("body", ""))


class SqsEvent(DictView):
    @staticmethod
    def matches(data: Mapping[str, Any]) -> bool:
        records = data.get("Records")
        return bool(records) and isinstance(records, list) and records[0].get("eventSource") == "aws:sqs"

    @property
    def records(self) -> Iterator[SqsRecord]:
        for record in self._data.get("Records", []):
            yield SqsRecord(record)


class CloudEvent(DictView):
    """A structured-mode CloudEvent. (In binary mode the HTTP body already is the data.)"""

    @staticmethod
    def matches(data: Mapping[str, Any]) -> bool:
        return "specversion" in data and ("data" in data or "data_base64" in data)

    @property
    def data(self) -> Any:
        if "data_base64" in self._data:
            return base64.b64decode(self._data["data_base64"])
        return self._data.get("data")


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


def object_refs(payload: Any) -> list[ObjectRef]:
    """Every created object the payload announces (decoded keys). Raises BadInput for other events."""
    data = load_json(payload)
    if isinstance(data, Mapping) and CloudEvent.matches(data):
        data = load_json(CloudEvent(data).data)
    if not isinstance(data, Mapping):
        raise BadInput("the event is not a JSON object")
    if S3TestEvent.matches(data):
        return []
    if S3Event.matches(data):
        return [record.ref() for record in S3Event(data).records if record.is_object_created]
    if EventBridgeObjectCreated.matches(data):
        return [EventBridgeObjectCreated(data).ref()]
    raise BadInput("not an S3 ObjectCreated notification or an EventBridge 'Object Created' event")
