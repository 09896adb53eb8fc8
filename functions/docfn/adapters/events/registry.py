"""The event sources docfn understands, in the order they are asked (Mangum's handler list).

Order matters only for overlapping shapes: envelopes and notifications first, HTTP last. The Lambda
handler asks :func:`source_for`; ``POST /v1/events`` and the envelopes (SQS bodies, CloudEvents) ask
:func:`object_refs`. A new source is a module with one class, added to these lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.errors import BadInput
from ...service.upload_jobs import ObjectRef
from .cloudevents import CloudEvents
from .contract import EventSource, ObjectEventSource
from .eventbridge import EventBridgeS3
from .function_url import FunctionUrl
from .s3 import S3Notifications
from .sqs import SqsBatch
from .views import load_json

OBJECT_SOURCES: list[ObjectEventSource] = [S3Notifications(), EventBridgeS3(), CloudEvents()]
SOURCES: list[EventSource] = [SqsBatch(), *OBJECT_SOURCES, FunctionUrl()]


def source_for(event: Any) -> EventSource | None:
    if not isinstance(event, Mapping):
        return None
    return next((source for source in SOURCES if source.infer(event)), None)


def object_refs(payload: Any) -> list[ObjectRef]:
    """Every created object the payload announces (decoded keys). Raises BadInput for other events."""
    data = load_json(payload)
    if not isinstance(data, Mapping):
        raise BadInput("the event is not a JSON object")
    for source in OBJECT_SOURCES:
        if source.infer(data):
            return source.object_refs(data, object_refs)
    raise BadInput("not an S3 ObjectCreated notification or an EventBridge 'Object Created' event")
