"""Getting a task's packs onto local disk, verified: from a remote source by URI scheme (``s3``, bound
in ``docfn.cloud``), from a local directory, or from the local store's default packs.

Packs baked into the image (``DOCFN_BAKED_PACKS``, ``scripts/build_image TASK --with-packs``) come
first: a pack named ``NAME/VERSION`` found there is verified by sha256 like a fetched one and used
without any fetch (a version is immutable once published, so the copy is the published pack). A
baked pack that fails verification is refused with the reason; it never falls back to a fetch.

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
from ..packs.manifest import MANIFEST_NAME, PackVerificationError, verify_pack
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
        baked: Path | None = None,
    ) -> None:
        self.store = store
        self.remote = dict(remote or {})
        self.builder = builder
        self.baked = baked

    def materialise(self, ref: PackRef) -> LocalPack:
        """A local, verified copy of the pack ``ref`` names (fetched or built on first use only)."""
        scheme = ref.scheme
        if scheme is not None or not ref.uri:  # a URI's pack or a default one: baked into the image?
            baked = self._baked(ref)
            if baked is not None:
                return baked
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

    def _baked(self, ref: PackRef) -> LocalPack | None:
        """The copy of ``ref``'s pack baked into the image, verified; None when there is none."""
        if self.baked is None:
            return None
        target = pack_dir(self.baked, ref.name, ref.version)
        if not (target / MANIFEST_NAME).is_file():
            return None
        start = time.perf_counter()
        try:
            manifest = verify_pack(target)
        except PackVerificationError as exc:
            refused = f"model pack {ref.pack_id} baked into {target} refused: {exc.message}"
            raise PackVerificationError(refused) from exc
        if (manifest.name, manifest.version) != (ref.name, ref.version):
            raise PackVerificationError(
                f"model pack baked into {target} describes {manifest.pack_id}, not {ref.pack_id}"
            )
        return LocalPack(target, manifest, verify_seconds=time.perf_counter() - start)

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
