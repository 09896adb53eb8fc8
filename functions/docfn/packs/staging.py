"""Building a pack beside the store and making it visible in one step.

Every writer of packs (build from a wheel, quantize, fetch from S3) works in a scratch directory
inside the store (same filesystem, so the final rename is atomic) that is removed whatever happens.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .manifest import Manifest, verify_pack


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


def promote(staging: Path, target: Path) -> Manifest:
    """Verify a fully written staging directory, then move it to ``target`` in one rename.

    Readers only ever see ``target`` absent or complete: a half-built pack is never visible.
    """
    manifest = verify_pack(staging)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    staging.replace(target)
    return manifest
