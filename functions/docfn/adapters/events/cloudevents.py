"""CloudEvents (Knative Eventing) in structured mode: ``specversion`` + ``data``/``data_base64``, the
data being any other object event (an S3 notification, EventBridge's form). In binary mode the HTTP
body already is the data and the registry reads it directly."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from ...service.upload_jobs import ObjectRef
from .contract import DirectObjectEvents, Unwrap
from .views import DictView


class StructuredCloudEvent(DictView):
    @staticmethod
    def matches(data: Mapping[str, Any]) -> bool:
        return "specversion" in data and ("data" in data or "data_base64" in data)

    @property
    def data(self) -> Any:
        if "data_base64" in self._data:
            return base64.b64decode(self._data["data_base64"])
        return self._data.get("data")


class CloudEvents(DirectObjectEvents):
    name = "cloudevents"

    def infer(self, event: Mapping[str, Any]) -> bool:
        return StructuredCloudEvent.matches(event)

    def object_refs(self, event: Mapping[str, Any], unwrap: Unwrap) -> list[ObjectRef]:
        return unwrap(StructuredCloudEvent(event).data)
