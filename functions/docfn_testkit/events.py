"""AWS Lambda events for tests: the real sample payloads of tests/data/events (never hand-written),
retargeted at a test's request, object or bucket."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any
from urllib.parse import quote_plus

from .paths import load_event  # a fresh copy of the sample each call, to edit
from .servers import TEST_BUCKET

# The bucket the sample events are retargeted at by default (the one the S3 test servers create).
BUCKET = TEST_BUCKET


def function_url_event(
    method: str,
    path: str,
    body: bytes | str | None = None,
    *,
    content_type: str | None = None,
    base64_body: bool = False,
    query: str = "",
) -> dict[str, Any]:
    event = load_event("lambda-function-url.json")
    event["rawPath"] = path
    event["rawQueryString"] = query
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    headers = event["headers"]
    headers.pop("accept-encoding", None)  # keep responses uncompressed and comparable
    if content_type:
        headers["content-type"] = content_type
    if body is not None:
        raw = body.encode() if isinstance(body, str) else body
        headers["content-length"] = str(len(raw))
        event["body"] = base64.b64encode(raw).decode() if base64_body else raw.decode()
        event["isBase64Encoded"] = base64_body
    return event


def s3_event(key: str, size: int, bucket: str = BUCKET) -> dict[str, Any]:
    """A direct S3 ObjectCreated notification; S3 sends the key URL-encoded (quote_plus)."""
    event = load_event("s3-object-created.json")
    record = event["Records"][0]
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["s3"]["object"]["key"] = quote_plus(key)
    record["s3"]["object"]["size"] = size
    return event


def sqs_event(bodies: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """An SQS batch: (messageId, S3 notification) pairs, each notification JSON-encoded as the body."""
    event = load_event("s3-via-sqs.json")
    template = event["Records"][0]
    event["Records"] = []
    for message_id, notification in bodies:
        record = copy.deepcopy(template)
        record["messageId"] = message_id
        record["body"] = json.dumps(notification)
        event["Records"].append(record)
    return event


def sqs_notification(key: str, size: int) -> dict[str, Any]:
    """The notification inside the sample SQS message, retargeted at ``key``."""
    notification = json.loads(load_event("s3-via-sqs.json")["Records"][0]["body"])
    record = notification["Records"][0]
    record["s3"]["bucket"]["name"] = BUCKET
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{BUCKET}"
    record["s3"]["object"]["key"] = quote_plus(key)
    record["s3"]["object"]["size"] = size
    return notification


def eventbridge_event(key: str, size: int) -> dict[str, Any]:
    event = load_event("s3-eventbridge-object-created.json")
    event["resources"] = [f"arn:aws:s3:::{BUCKET}"]
    event["detail"]["bucket"]["name"] = BUCKET
    # S3 URL-encodes keys for EventBridge as for its notifications ("+" for spaces); Powertools'
    # S3EventBridgeNotificationObject.key decodes them the same way, and so does docfn.
    event["detail"]["object"]["key"] = quote_plus(key, safe="/")
    event["detail"]["object"]["size"] = size
    return event
