"""The one place boto3 clients are made and botocore errors classified.

S3 clients are made lazily (Lambda's init phase stays imports-only), once per endpoint for the
process (creating one costs ~100 ms), with short timeouts and bounded retries so an unreachable
store turns into a fast 503 the caller can retry, not a request hanging to its deadline.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

_clients: dict[tuple[str | None, str | None], Any] = {}
_lock = threading.Lock()  # boto3 session creation is not thread-safe


def s3_client(endpoint_url: str | None = None, region: str | None = None) -> Any:
    key = (endpoint_url, region)
    client = _clients.get(key)
    if client is not None:
        return client
    with _lock:
        client = _clients.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                signature_version="s3v4",
                connect_timeout=3,
                read_timeout=30,
                retries={"mode": "standard", "max_attempts": 3},
                max_pool_connections=16,  # parallel ranged GETs of model packs
                # Custom endpoints (MinIO, moto, IP addresses) only answer path-style URLs.
                s3={"addressing_style": "path" if endpoint_url else "auto"},
            )
            client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_url, region_name=region, config=config
            )
            _clients[key] = client
    return client


def forget_clients() -> None:
    """Drop every cached client and boto3's default session (SnapStart's hooks: a restored container
    must resolve its own credentials and open its own connections, not reuse the snapshot's)."""
    with _lock:
        _clients.clear()
        boto3 = sys.modules.get("boto3")
        if boto3 is not None:
            boto3.DEFAULT_SESSION = None  # what boto3.client(...) (secrets.py) caches


# botocore's failures, classified once for every caller (object store, pack fetch, publish).
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
THROTTLING_CODES = frozenset({"SlowDown", "Throttling", "RequestTimeout"})


def error_code(exc: BaseException) -> str:
    """The service's error code of a ``ClientError`` ("NoSuchKey", "AccessDenied", …), else ""."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def is_not_found(exc: BaseException) -> bool:
    """The object (or key) is not there: a 404, not an outage."""
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and error_code(exc) in NOT_FOUND_CODES


def is_transient(exc: BaseException) -> bool:
    """Network failures, timeouts, throttling and 5xx: worth retrying, unlike a missing key or a 403."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or status == 429 or error_code(exc) in THROTTLING_CODES
    return isinstance(exc, BotoCoreError)
