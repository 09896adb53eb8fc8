"""The one place boto3 S3 clients are made: lazily (Lambda's init phase stays imports-only), once per
endpoint for the process (creating one costs ~100 ms), with short timeouts and bounded retries so an
unreachable store turns into a fast 503 the caller can retry, not a request hanging to its deadline."""

from __future__ import annotations

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
