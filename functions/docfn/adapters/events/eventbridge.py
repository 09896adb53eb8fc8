"""EventBridge's S3 ``Object Created`` events, invoking the function directly (or inside SQS bodies).

The key is URL-decoded as in S3 notifications, as Powertools' ``S3EventBridgeNotificationObject``
does: S3 encodes keys the same way for both destinations, and decoding an unencoded key changes
nothing but ``+`` and ``%XX`` sequences, which docfn's own upload keys never contain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from ...service.upload_jobs import ObjectRef
from .contract import DirectObjectEvents, Unwrap
from .views import DictView


class EventBridgeObjectCreated(DictView):
    @staticmethod
    def matches(data: Mapping[str, Any]) -> bool:
        return data.get("source") == "aws.s3" and data.get("detail-type") == "Object Created"

    @property
    def bucket_name(self) -> str:
        return str(self._data["detail"]["bucket"]["name"])

    @property
    def key(self) -> str:
        return unquote_plus(str(self._data["detail"]["object"]["key"]))

    def ref(self) -> ObjectRef:
        obj = self._data["detail"]["object"]
        size = obj.get("size")
        return ObjectRef(self.bucket_name, self.key, int(size) if size is not None else None, obj.get("etag"))


class EventBridgeS3(DirectObjectEvents):
    name = "eventbridge"

    def infer(self, event: Mapping[str, Any]) -> bool:
        return EventBridgeObjectCreated.matches(event)

    def object_refs(self, event: Mapping[str, Any], unwrap: Unwrap) -> list[ObjectRef]:
        return [EventBridgeObjectCreated(event).ref()]
