"""Fetching a model pack from S3 on a cold start: parallel ranged GETs, verified, made visible atomically.

``s3://BUCKET/models/NAME/VERSION/manifest.json`` lists the files with sha256 and size. The files
are downloaded into a scratch directory inside the local store, every byte is checked against the
manifest, and only then is the directory promoted to ``store/NAME/VERSION``: a partial or corrupt
download never becomes a usable pack, and a refused one leaves nothing behind. A warm container (or
a second task sharing the pack) reuses the verified copy (``docfn.packs.store.reusable_pack``).

A function whose pack fetch runs in a prefetch process (``docfn.cloud.prefetch``) waits for that
process first, then reuses its verified copy; the wait counts as the load's fetch time.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..core.errors import ConfigurationError, PackNotConfigured, Unavailable
from ..packs.catalog import build_command
from ..packs.manifest import MANIFEST_NAME, Manifest, PackVerificationError, verify_pack
from ..packs.refs import PackRef
from ..packs.store import LocalPack, mark_verified, pack_dir, promote, reusable_pack, scratch_dir
from . import prefetch
from .aws_clients import error_code, is_not_found, is_transient, s3_client

log = logging.getLogger("docfn.packs")

PART_SIZE = 8 * 1024 * 1024  # ranged-GET size: big enough to amortise a request, small enough to overlap
WORKERS = 8
RETRY_AFTER_SECONDS = 5

_target_locks_lock = threading.Lock()
_target_locks: dict[Path, threading.Lock] = {}


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/models/name/version`` -> (``bucket``, ``models/name/version``)."""
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key.strip("/")


def _unavailable(uri: str, exc: BaseException) -> Unavailable:
    return Unavailable(
        f"the model store is unreachable: could not fetch model pack {uri} ({exc}); retry shortly",
        retry_after=RETRY_AFTER_SECONDS,
    )


def _read_manifest(client: Any, bucket: str, prefix: str, ref: PackRef) -> tuple[bytes, Manifest]:
    uri = str(ref.uri)
    from botocore.exceptions import BotoCoreError, ClientError

    key = f"{prefix}/{MANIFEST_NAME}"
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if is_transient(exc):
            raise _unavailable(uri, exc) from exc
        code = error_code(exc)
        if is_not_found(exc):
            raise PackNotConfigured(
                f"no model pack manifest at s3://{bucket}/{key}: check {ref.setting}={uri}, or build the"
                f" pack (`{build_command(ref.name)}`) and publish it there with `docfn models publish"
                f" DIR/{ref.name}/{ref.version} --bucket {bucket}`",
                retry_after=60,
            ) from exc
        if code == "NoSuchBucket":
            raise ConfigurationError(
                f"model pack bucket {bucket!r} does not exist (DOCFN_MODEL_URI={uri})"
            ) from exc
        raise ConfigurationError(
            f"cannot read model pack manifest s3://{bucket}/{key}: {code or exc}"
        ) from exc
    except (BotoCoreError, OSError) as exc:
        raise _unavailable(uri, exc) from exc
    try:
        manifest = Manifest.from_dict(json.loads(body))
    except ValueError as exc:
        raise ConfigurationError(f"model pack manifest s3://{bucket}/{key} is not valid JSON: {exc}") from exc
    return body, manifest


def _check_paths(manifest: Manifest) -> None:
    # Checked before anything is written: verify_pack checks again, but only after the download.
    for entry in manifest.files:
        parts = Path(entry.path).parts
        if Path(entry.path).is_absolute() or ".." in parts or not parts or entry.path == MANIFEST_NAME:
            raise PackVerificationError(f"pack file path {entry.path!r} escapes the pack directory")


def _download_ranges(client: Any, bucket: str, prefix: str, manifest: Manifest, staging: Path) -> int:
    """Every file, split into PART_SIZE ranges, fetched in parallel and written at their offsets."""
    jobs: list[tuple[str, Path, int, int]] = []
    for entry in manifest.files:
        path = staging / entry.path
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            handle.truncate(entry.size)
        for start in range(0, entry.size, PART_SIZE):
            jobs.append((f"{prefix}/{entry.path}", path, start, min(start + PART_SIZE, entry.size) - 1))

    def fetch(job: tuple[str, Path, int, int]) -> int:
        key, path, first, last = job
        body = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={first}-{last}")["Body"].read()
        # A short or long body is written as is: the size + sha256 check refuses the file afterwards.
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, body, first)
        finally:
            os.close(fd)
        return len(body)

    with ThreadPoolExecutor(
        max_workers=min(WORKERS, max(1, len(jobs))), thread_name_prefix="docfn-fetch"
    ) as pool:
        return sum(pool.map(fetch, jobs))


def _target_lock(target: Path) -> threading.Lock:
    # Tasks sharing one pack (ocr, table, parse) in one process fetch it once, not once each.
    with _target_locks_lock:
        return _target_locks.setdefault(target, threading.Lock())


class S3PackSource:
    """Model packs named ``s3://…``: fetched into the local ``store`` on first use only."""

    scheme = "s3"

    def __init__(self, store: Path, *, endpoint_url: str | None = None) -> None:
        self.store = store
        self.endpoint_url = endpoint_url

    def materialise(self, ref: PackRef) -> LocalPack:
        return fetch_pack_from_s3(ref, self.store, endpoint_url=self.endpoint_url)


def fetch_pack_from_s3(ref: PackRef, store: Path, *, endpoint_url: str | None) -> LocalPack:
    """A local, verified copy of the pack at ``ref.uri`` (``s3://…``), fetched on first use only."""
    assert ref.uri is not None and ref.uri.startswith("s3://")
    target = pack_dir(store, ref.name, ref.version)
    waited = prefetch.wait()  # a prefetch process fetching it: its copy, not a second download
    with _target_lock(target):
        start = time.perf_counter()
        reused = reusable_pack(target)
        if reused is not None:
            log.info("model pack %s reused from %s (verified when fetched)", ref.pack_id, target)
            return LocalPack(target, reused, fetch_seconds=waited, verify_seconds=time.perf_counter() - start)
        return _fetch(ref, store, target, endpoint_url)


def _fetch(ref: PackRef, store: Path, target: Path, endpoint_url: str | None) -> LocalPack:
    assert ref.uri is not None
    bucket, prefix = split_s3_uri(ref.uri)
    started = time.perf_counter()
    client = s3_client(endpoint_url)
    manifest_bytes, manifest = _read_manifest(client, bucket, prefix, ref)
    if (manifest.name, manifest.version) != (ref.name, ref.version):
        raise ConfigurationError(
            f"manifest at {ref.uri} describes {manifest.pack_id}, not {ref.pack_id}:"
            " the URI and the pack disagree"
        )
    _check_paths(manifest)
    with scratch_dir(store, prefix=f".{ref.name}-{ref.version}-", suffix=".part") as staging:
        (staging / MANIFEST_NAME).write_bytes(manifest_bytes)
        try:
            fetched_bytes = _download_ranges(client, bucket, prefix, manifest, staging)
        except Exception as exc:
            if is_transient(exc):
                raise _unavailable(ref.uri, exc) from exc
            if isinstance(exc, OSError):  # local disk (a full /tmp): this instance cannot load it now
                raise Unavailable(
                    f"cannot write model pack {ref.pack_id} under {store}: {exc}",
                    retry_after=RETRY_AFTER_SECONDS,
                ) from exc
            raise ConfigurationError(f"cannot download model pack {ref.uri}: {exc}") from exc
        downloaded = time.perf_counter()
        try:
            verified_manifest = verify_pack(staging)
        except PackVerificationError as exc:
            raise PackVerificationError(f"model pack {ref.uri} refused: {exc.message}") from exc
        mark_verified(staging, manifest_bytes)
        verified = time.perf_counter()
        promote(staging, target, verified_manifest)
    log.info(
        "model pack %s fetched from %s: %d bytes in %.2f s, verified in %.2f s",
        ref.pack_id,
        ref.uri,
        fetched_bytes,
        downloaded - started,
        verified - downloaded,
    )
    return LocalPack(
        target,
        manifest,
        fetch_seconds=downloaded - started,
        verify_seconds=verified - downloaded,
    )
