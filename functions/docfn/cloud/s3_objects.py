"""The object store of asynchronous jobs over S3 (AWS, MinIO, moto) through boto3.

The client is created on first use, so importing this module costs a Lambda init nothing. Failures
become docfn errors here, once: a missing object :class:`ObjectMissing` (404), a key the role may
not access :class:`Forbidden` (403, not retryable), everything else :class:`Unavailable` (503), so
callers degrade instead of crashing.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import DocfnError, Forbidden, PayloadTooLarge, Unavailable
from ..core.settings import Settings
from ..service.storage import ListedObject, ObjectMissing, ObjectStore, PresignedUpload, StoredObject
from .aws_clients import error_code, is_not_found, s3_client

# A conditional write that lost: the object exists (If-None-Match), changed (If-Match), or another
# conditional write to it is in flight.
LOST_RACE_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


class S3ObjectStore:
    """S3 (or an S3-compatible endpoint) through boto3, with short timeouts and bounded retries."""

    def __init__(self, bucket: str, *, endpoint_url: str | None = None, region: str | None = None) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region

    @property
    def client(self) -> Any:
        return s3_client(self.endpoint_url, self.region)

    def get(self, key: str, *, max_bytes: int | None = None) -> StoredObject:
        with _translated(key):
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            length = int(response.get("ContentLength") or 0)
            if max_bytes is not None and length > max_bytes:
                response["Body"].close()
                raise PayloadTooLarge(
                    f"s3://{self.bucket}/{key} is {length:,} bytes; the job limit is {max_bytes:,} bytes"
                )
            data = response["Body"].read()
        return StoredObject(key, data, response.get("ContentType"), (response.get("ETag") or "").strip('"'))

    def get_optional(self, key: str) -> bytes | None:
        try:
            return self.get(key).data
        except ObjectMissing:
            return None

    def put(self, key: str, data: bytes, content_type: str) -> None:
        with _translated(key):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def put_new(self, key: str, data: bytes, content_type: str) -> str | None:
        return self._put_if(key, data, content_type, IfNoneMatch="*")

    def replace(self, key: str, data: bytes, content_type: str, etag: str) -> str | None:
        return self._put_if(key, data, content_type, IfMatch=f'"{etag}"')

    def _put_if(self, key: str, data: bytes, content_type: str, **condition: str) -> str | None:
        """S3's conditional writes: exactly one of several racing writers wins (its new ETag, which
        the next conditional write names), the others get None."""
        from botocore.exceptions import ClientError

        try:
            with _translated(key):
                response = self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **condition
                )
        except Unavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and error_code(cause) in LOST_RACE_CODES:
                return None
            raise
        etag = (response.get("ETag") or "").strip('"')
        # Every S3 answers a PUT with its ETag; a store that does not is read back once.
        return etag or self.get(key).etag or ""

    def delete(self, key: str) -> None:
        with _translated(key):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def presign_upload(self, key: str, content_type: str | None, expires_in: int) -> PresignedUpload:
        # A presigned PUT: any HTTP client can use it (curl -T). Signing is local, no request is made.
        params: dict[str, str] = {"Bucket": self.bucket, "Key": key}
        headers: dict[str, str] = {}
        if content_type:
            params["ContentType"] = content_type
            headers["Content-Type"] = content_type
        with _translated(key):
            url = self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)
        return PresignedUpload("PUT", url, headers, expires_in)

    def presign_download(self, key: str, expires_in: int) -> str:
        with _translated(key):
            return str(
                self.client.generate_presigned_url(
                    "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
                )
            )

    def list_objects(self, prefix: str) -> list[ListedObject]:
        listed: list[ListedObject] = []
        with _translated(prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    etag = (item.get("ETag") or "").strip('"') or None
                    listed.append(ListedObject(item["Key"], int(item.get("Size") or 0), etag))
        return listed


# What S3 answers when the role may not read or write a key: not a passing outage, so not a 503 that
# clients retry (Retry-After), but a 403 saying so.
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "403"})


class _translated:
    """Maps boto3/botocore failures to docfn errors: missing objects 404, access denied 403,
    everything else 503."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or isinstance(exc, DocfnError):
            return False
        from botocore.exceptions import BotoCoreError, ClientError

        if is_not_found(exc):
            raise ObjectMissing(f"object {self.key!r} does not exist") from exc
        if isinstance(exc, ClientError) and error_code(exc) in ACCESS_DENIED_CODES:
            raise Forbidden(f"this function's role may not access {self.key!r} (AccessDenied)") from exc
        if isinstance(exc, ClientError):
            code = error_code(exc)
            raise Unavailable(f"object storage refused {self.key!r}: {code or exc}", retry_after=5) from exc
        if isinstance(exc, BotoCoreError | OSError):
            raise Unavailable(f"object storage is unreachable: {exc}", retry_after=5) from exc
        return False


def object_store(settings: Settings) -> ObjectStore | None:
    """The configured store (``DOCFN_BUCKET``, ``DOCFN_S3_ENDPOINT_URL``), or None without a bucket."""
    if not settings.bucket:
        return None
    return S3ObjectStore(settings.bucket, endpoint_url=settings.s3_endpoint_url)
