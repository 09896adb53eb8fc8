"""The local pack store: verified pack directories under ``STORE/NAME/VERSION``, and the one way a
pack gets there.

Every writer of packs (build from a wheel, quantize, fetch from S3) works in a scratch directory
inside the store (same filesystem, so the final rename is atomic) that is removed whatever happens,
and makes it visible with :func:`promote`: readers only ever see a pack absent or complete.

A pack fetched from elsewhere carries a marker recording its manifest's sha256, written only after
every file was hashed; :func:`reusable_pack` then trusts the directory on the marker, the manifest
hash and each file's size (a stat, no re-hash): re-hashing a multi-GB VLM pack would cost seconds on
every process start, and nothing but :func:`promote` writes these directories.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigurationError
from .manifest import MANIFEST_NAME, Manifest, verify_pack

VERIFIED_MARKER = ".docfn-verified"


@dataclass
class LocalPack:
    """A verified pack on local disk, and what getting it there cost."""

    pack_dir: Path
    manifest: Manifest
    fetch_seconds: float = 0.0
    verify_seconds: float = 0.0


def pack_dir(store: Path, name: str, version: str) -> Path:
    return store / name / version


@contextmanager
def scratch_dir(store: Path, prefix: str, suffix: str = "") -> Iterator[Path]:
    """A fresh directory inside ``store``; gone afterwards unless it was promoted (renamed away)."""
    store.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=store))
    try:
        yield path
    finally:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)


def promote(staging: Path, target: Path, manifest: Manifest | None = None) -> Manifest:
    """Move a fully written staging directory to ``target`` in one rename, after verifying it
    (unless the caller already did and passes the ``manifest`` it verified)."""
    manifest = manifest or verify_pack(staging)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    try:
        staging.rename(target)
    except OSError:
        # Another process promoted the same pack between the two steps: theirs is verified too.
        if not (target / MANIFEST_NAME).is_file():
            raise
    return manifest


def mark_verified(pack: Path, manifest_bytes: bytes) -> None:
    """Record that every file of ``pack`` matched ``manifest_bytes`` (call only after hashing them)."""
    payload = {"manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest()}
    (pack / VERIFIED_MARKER).write_text(json.dumps(payload))


def reusable_pack(target: Path) -> Manifest | None:
    """The local copy if it was verified when fetched and still looks exactly as it did then."""
    marker = target / VERIFIED_MARKER
    manifest_path = target / MANIFEST_NAME
    if not (marker.is_file() and manifest_path.is_file()):
        return None
    try:
        recorded = json.loads(marker.read_text())["manifest_sha256"]
        manifest_bytes = manifest_path.read_bytes()
        if hashlib.sha256(manifest_bytes).hexdigest() != recorded:
            return None
        manifest = Manifest.from_dict(json.loads(manifest_bytes))
    except (OSError, ValueError, KeyError, ConfigurationError):
        return None
    for entry in manifest.files:
        path = target / entry.path
        if not path.is_file() or path.stat().st_size != entry.size:
            return None
    return manifest
