"""Publishing a pack to ``s3://BUCKET/models/NAME/VERSION/``, behind the accuracy gate.

Files go up first and ``manifest.json`` last, so a reader that sees a manifest finds every file it
lists. Versions are immutable: an existing version is only replaced with ``force`` (and a reader
that catches the replacement half-way refuses the mixed pack on its sha256 check, caching nothing).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cloud.aws_clients import error_code, is_not_found, s3_client
from ..core.errors import DocfnError, NotFound, Unavailable
from ..packs.manifest import MANIFEST_NAME, VLM_PARITY_METRIC, Manifest, verify_pack

log = logging.getLogger("docfn.packs")

DEFAULT_MAX_CER_REGRESSION_PP = 0.5


class PublishRefused(DocfnError):
    status, code = 409, "publish_refused"


@dataclass(frozen=True)
class PublishResult:
    uri: str
    files: int
    bytes: int


def check_accuracy(manifest: Manifest, max_cer_regression_pp: float = DEFAULT_MAX_CER_REGRESSION_PP) -> None:
    """Refuse a quantized pack that lost more than the margin against its fp32 source, or never measured it.

    An fp32 pack (what ``build`` makes) is its own source: there is nothing to regress.
    """
    if manifest.precision == "fp32":
        return
    accuracy = manifest.accuracy
    if accuracy.get("metric") == VLM_PARITY_METRIC:
        _check_vlm_parity(manifest)
        return
    if accuracy.get("metric") != "cer" or not {"fp32", "int8"} <= set(accuracy):
        raise PublishRefused(
            f"{manifest.pack_id} is {manifest.precision} but its manifest records no CER measured against"
            " the fp32 source (accuracy.metric/fp32/int8); run `docfn models quantize` to measure it"
        )
    regression_pp = 100.0 * (float(accuracy["int8"]) - float(accuracy["fp32"]))
    if regression_pp > max_cer_regression_pp:
        raise PublishRefused(
            f"{manifest.pack_id} refused: {manifest.precision} CER {float(accuracy['int8']):.2%} is"
            f" {regression_pp:.2f} pp worse than the fp32 source's {float(accuracy['fp32']):.2%}"
            f" (margin {max_cer_regression_pp:g} pp, eval set {accuracy.get('eval_set', '?')})"
        )


def _check_vlm_parity(manifest: Manifest) -> None:
    """A VLM pack (``docfn models export-vlm``) measured its decoders against transformers on the same
    weights: its fp32 graphs must reproduce every greedy answer exactly (else the export is wrong),
    and its quantised decoder's agreement must be recorded. That agreement is not gated on a
    threshold: it depends on the weights (thin on random ones), and the manifest states it."""
    accuracy = manifest.accuracy
    fp32, quantised = accuracy.get("fp32_decoder"), accuracy.get(f"{manifest.precision}_decoder")
    if not fp32 or not quantised:
        raise PublishRefused(
            f"{manifest.pack_id} is {manifest.precision} but its manifest records no parity of its fp32"
            f" and {manifest.precision} decoders against transformers; export it with"
            " `docfn models export-vlm`"
        )
    if fp32["exact_cases"] != fp32["cases"]:
        raise PublishRefused(
            f"{manifest.pack_id} refused: its fp32 graphs reproduce transformers' greedy tokens in"
            f" {fp32['exact_cases']} of {fp32['cases']} cases; the export is wrong, not the weights"
        )


def _exists(client: Any, bucket: str, key: str) -> bool:
    try:
        client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if is_not_found(exc):
            return False
        raise
    return True


def _check_bucket(client: Any, bucket: str) -> None:
    """A missing or unreachable bucket is said plainly before any upload starts."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if is_not_found(exc) or error_code(exc) == "NoSuchBucket":
            raise NotFound(f"bucket {bucket!r} does not exist (create it, or pass --bucket)") from exc
        raise PublishRefused(f"bucket {bucket!r} refused access: {error_code(exc) or exc}") from exc
    except BotoCoreError as exc:
        raise Unavailable(f"the S3 endpoint is unreachable: {exc}") from exc


def publish_pack(
    pack_dir: Path,
    bucket: str,
    *,
    endpoint_url: str | None = None,
    force: bool = False,
    max_cer_regression_pp: float = DEFAULT_MAX_CER_REGRESSION_PP,
) -> PublishResult:
    manifest = verify_pack(pack_dir)  # never publish what would be refused on the other side
    check_accuracy(manifest, max_cer_regression_pp)
    prefix = f"models/{manifest.name}/{manifest.version}"
    uri = f"s3://{bucket}/{prefix}"
    client = s3_client(endpoint_url)
    _check_bucket(client, bucket)
    if _exists(client, bucket, f"{prefix}/{MANIFEST_NAME}") and not force:
        raise PublishRefused(f"{uri} already exists; versions are immutable (use --force to replace it)")
    total = 0
    for entry in manifest.files:
        client.upload_file(str(pack_dir / entry.path), bucket, f"{prefix}/{entry.path}")
        total += entry.size
    body = json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False).encode() + b"\n"
    client.put_object(
        Bucket=bucket, Key=f"{prefix}/{MANIFEST_NAME}", Body=body, ContentType="application/json"
    )
    log.info("published %s to %s (%d files, %d bytes)", manifest.pack_id, uri, len(manifest.files), total)
    return PublishResult(uri=uri, files=len(manifest.files), bytes=total)


def list_bucket_packs(bucket: str, *, endpoint_url: str | None = None) -> list[dict[str, Any]]:
    """Every published pack under ``s3://BUCKET/models/``, with its precision and measured accuracy."""
    client = s3_client(endpoint_url)
    rows = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="models/"):
        for item in page.get("Contents", []):
            if not item["Key"].endswith(f"/{MANIFEST_NAME}"):
                continue
            data = json.loads(client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            manifest = Manifest.from_dict(data)
            rows.append(
                {
                    "pack": manifest.pack_id,
                    "uri": f"s3://{bucket}/{item['Key'].rsplit('/', 1)[0]}",
                    "tasks": manifest.tasks,
                    "precision": manifest.precision,
                    "accuracy": manifest.accuracy,
                    "bytes": sum(f.size for f in manifest.files),
                }
            )
    return rows
