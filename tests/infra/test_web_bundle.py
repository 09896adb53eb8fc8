"""The optional Terraform part of issue 29: the folder `docfn export-web DIR` writes, in a private S3
bucket behind CloudFront (infra/terraform/web.tf, modules/web_bundle).

Everything is read from the Terraform files: their structure with python-hcl2, the submodule's
locals applied by the Terraform core over a real export (no provider), and, in the slow `tools`
group, `terraform validate` and `terraform plan` of a root made of the module's own variables.tf,
web.tf, outputs and submodule with the real AWS provider and fake credentials (no AWS account).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from docfn.packs.catalog import DEFAULT_PACKS, default_version
from docfn.packs.store import pack_dir
from docfn_testkit.hcl import TF_DIR, Config, attr, blocks, dynamic_contents, examples, module, text_of
from docfn_testkit.terraform_plan import (
    WEB_BUNDLE_DIR,
    plan_errors,
    plan_json,
    planned_resources,
    run_terraform,
    web_bundle_locals,
    web_bundle_root,
)

# What cross-origin isolation needs (issue 29: WASM threads in the page).
ISOLATION = {
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "cross-origin-resource-policy": "same-origin",
}
# What each kind of file must be served as for the page to load it: a module script needs a
# JavaScript MIME type, WebAssembly.instantiateStreaming needs exactly application/wasm.
REQUIRED_TYPES = {
    "html": "text/html",
    "js": "text/javascript",
    "mjs": "text/javascript",
    "json": "application/json",
    "wasm": "application/wasm",
    "onnx": "application/octet-stream",
}


def essence(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


@pytest.fixture(scope="module")
def bundle(model_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `docfn export-web DIR` writes, for real, with the default OCR pack."""
    site = tmp_path_factory.mktemp("web") / "bundle"
    ocr = DEFAULT_PACKS["ocr"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "docfn",
            "export-web",
            str(site),
            "--pack",
            str(pack_dir(model_store, ocr, default_version(ocr))),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return site


def exported(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())


# --------------------------------------------------------------------------------------
# The files: every one export-web writes is uploaded with a type the browser accepts
# --------------------------------------------------------------------------------------


def test_every_file_export_web_writes_gets_a_mapped_content_type(bundle: Path, tmp_path: Path) -> None:
    values = web_bundle_locals(bundle, tmp_path / "eval")
    files = exported(bundle)
    assert sorted(values["files"]) == files, "the module does not upload exactly the exported files"
    types = values["content_types"]
    for path in files:
        assert extension(path) in types, (
            f"{path}: extension {extension(path)!r} has no Content-Type in the module"
        )
    written = {extension(p) for p in files}
    assert {"html", "js", "mjs", "wasm", "json", "onnx"} <= written, f"export-web wrote {sorted(written)}"
    for ext in written & set(REQUIRED_TYPES):
        assert essence(types[ext]) == REQUIRED_TYPES[ext], f".{ext} is served as {types[ext]}"
    # The entry page is revalidated on every visit; the rest is cached for max_age_seconds.
    assert values["cache_control"]["index.html"] == "no-cache"
    assert all("max-age=" in values["cache_control"][p] for p in files if p != "index.html")


def test_content_types_can_be_added_and_an_unmapped_file_is_refused_at_plan_time(
    bundle: Path, tmp_path: Path
) -> None:
    values = web_bundle_locals(bundle, tmp_path / "eval", content_types={"ico": "image/x-icon"})
    assert values["content_types"]["ico"] == "image/x-icon"
    (obj,) = [
        body for (rtype, _), body in Config(WEB_BUNDLE_DIR).resources.items() if rtype == "aws_s3_object"
    ]
    assert attr(obj, "for_each") == "${local.files}"
    (lifecycle,) = blocks(obj, "lifecycle")
    (precondition,) = blocks(lifecycle, "precondition")
    assert "contains(keys(local.content_types),each.value)" in attr(precondition, "condition").replace(
        " ", ""
    )
    assert attr(obj, "source_hash", "").startswith("${filemd5("), "a changed file must be uploaded again"


def test_isolation_headers_are_the_three_the_page_needs(bundle: Path, tmp_path: Path) -> None:
    headers = web_bundle_locals(bundle, tmp_path / "eval")["isolation_headers"]
    assert {name.lower(): value for name, value in headers.items()} == ISOLATION
    policy = Config(WEB_BUNDLE_DIR).resource("aws_cloudfront_response_headers_policy", "this")
    (custom,) = blocks(policy, "custom_headers_config")
    (items,) = dynamic_contents(custom, "items")
    assert attr(items, "override") is True
    assert "local.isolation_headers" in text_of(custom)


# --------------------------------------------------------------------------------------
# Structure: private bucket, OAC, HTTPS, compression, index.html
# --------------------------------------------------------------------------------------


def test_bucket_is_private_encrypted_versioned_and_read_only_by_the_distribution() -> None:
    config = Config(WEB_BUNDLE_DIR)
    block = config.resource("aws_s3_bucket_public_access_block", "this")
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert attr(block, flag) is True, flag
    (rule,) = blocks(config.resource("aws_s3_bucket_ownership_controls", "this"), "rule")
    assert attr(rule, "object_ownership") == "BucketOwnerEnforced"
    assert "apply_server_side_encryption_by_default" in text_of(
        config.resource("aws_s3_bucket_server_side_encryption_configuration", "this")
    )
    (versioning,) = blocks(config.resource("aws_s3_bucket_versioning", "this"), "versioning_configuration")
    assert attr(versioning, "status") == "Enabled"
    statements = {
        attr(s, "sid"): s for s in blocks(config.datasource("aws_iam_policy_document", "bucket"), "statement")
    }
    allows = [s for s in statements.values() if attr(s, "effect") == "Allow"]
    assert len(allows) == 1, "only the distribution may read"
    (read,) = allows
    assert attr(read, "actions") == ["s3:GetObject"]
    (principal,) = blocks(read, "principals")
    assert attr(principal, "type") == "Service" and attr(principal, "identifiers") == [
        "cloudfront.amazonaws.com"
    ]
    (condition,) = blocks(read, "condition")
    assert attr(condition, "variable") == "AWS:SourceArn"
    assert attr(condition, "values") == ["${aws_cloudfront_distribution.this.arn}"]
    assert {"DenyInsecureTransport", "DenyOutdatedTls"} <= set(statements)


def test_distribution_uses_origin_access_control_https_compression_and_index_html() -> None:
    config = Config(WEB_BUNDLE_DIR)
    oac = config.resource("aws_cloudfront_origin_access_control", "this")
    assert attr(oac, "origin_access_control_origin_type") == "s3"
    assert attr(oac, "signing_behavior") == "always" and attr(oac, "signing_protocol") == "sigv4"
    assert not [key for key in config.resources if key[0] == "aws_cloudfront_origin_access_identity"]
    distribution = config.resource("aws_cloudfront_distribution", "this")
    assert attr(distribution, "default_root_object") == "index.html"
    (origin,) = blocks(distribution, "origin")
    assert attr(origin, "origin_access_control_id") == "${aws_cloudfront_origin_access_control.this.id}"
    assert not blocks(origin, "s3_origin_config"), "legacy origin access identity"
    (behavior,) = blocks(distribution, "default_cache_behavior")
    assert attr(behavior, "viewer_protocol_policy") == "redirect-to-https"
    assert sorted(attr(behavior, "allowed_methods")) == ["GET", "HEAD"], "the bundle is read-only"
    assert attr(behavior, "compress") is True
    assert attr(behavior, "response_headers_policy_id") == "${aws_cloudfront_response_headers_policy.this.id}"


def test_submodule_variables_are_described_typed_and_outputs_described() -> None:
    config = Config(WEB_BUNDLE_DIR)
    for name, body in config.variables.items():
        assert attr(body, "description") and attr(body, "type"), name
    for name, body in config.outputs.items():
        assert attr(body, "description"), name
    assert "url" in config.outputs


# --------------------------------------------------------------------------------------
# Root wiring: off by default
# --------------------------------------------------------------------------------------


def test_root_module_calls_it_behind_web_bundle_enabled_off_by_default(tmp_path: Path) -> None:
    call = module().modules["web_bundle"]
    assert attr(call, "source") == "./modules/web_bundle"
    assert attr(call, "count") == "${var.web_bundle.enabled ? 1 : 0}"
    # The variable's default, by Terraform: enabled false.
    scratch = tmp_path / "default"
    scratch.mkdir()
    shutil.copy(TF_DIR / "variables.tf", scratch / "variables.tf")
    (scratch / "outputs.tf").write_text('output "web_bundle" { value = var.web_bundle }\n')
    for args in (
        ("init", "-input=false", "-no-color"),
        ("apply", "-auto-approve", "-input=false", "-no-color"),
    ):
        done = run_terraform(scratch, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    shown = run_terraform(scratch, "output", "-json", "web_bundle")
    assert '"enabled":false' in shown.stdout.replace(" ", ""), shown.stdout


def test_the_complete_example_turns_it_on_with_web_bundle_dir() -> None:
    example = examples()["complete"]
    web = attr(example.modules["docfn"], "web_bundle")
    assert web["source_dir"] == "${var.web_bundle_dir}"
    # python-hcl2 releases print HCL's null as null or None.
    assert re.fullmatch(r"\$\{var\.web_bundle_dir != (null|None)\}", web["enabled"]), web["enabled"]
    assert attr(example.variables["web_bundle_dir"], "default") is None
    assert "module.docfn.web_bundle_url" in text_of(example.outputs["web_bundle_url"])


# --------------------------------------------------------------------------------------
# Planned by Terraform with the AWS provider (slow group `tools`)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return web_bundle_root(tmp_path_factory.mktemp("web-root") / "root")


def test_plan_validates(root: Path) -> None:
    done = run_terraform(root, "validate", "-no-color")
    assert done.returncode == 0, done.stdout + done.stderr


def test_plan_with_the_defaults_creates_nothing(root: Path) -> None:
    plan = plan_json(root)
    assert planned_resources(plan) == []
    assert all(output["after"] is None for output in plan["output_changes"].values())


def test_plan_enabled_creates_the_bucket_oac_distribution_and_headers_policy(
    root: Path, bundle: Path
) -> None:
    plan = plan_json(root, web_bundle={"enabled": True, "source_dir": str(bundle)})
    created = planned_resources(plan)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in created:
        assert resource["address"].startswith("module.web_bundle[0]."), resource["address"]
        by_type.setdefault(resource["type"], []).append(resource["values"])
    for rtype in (
        "aws_s3_bucket",
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_policy",
        "aws_cloudfront_origin_access_control",
        "aws_cloudfront_distribution",
        "aws_cloudfront_response_headers_policy",
    ):
        assert len(by_type.get(rtype, [])) == 1, f"{rtype}: {len(by_type.get(rtype, []))} planned"

    (policy,) = by_type["aws_cloudfront_response_headers_policy"]
    (custom,) = policy["custom_headers_config"]
    assert {item["header"].lower(): item["value"] for item in custom["items"]} == ISOLATION

    (oac,) = by_type["aws_cloudfront_origin_access_control"]
    assert (oac["origin_access_control_origin_type"], oac["signing_behavior"], oac["signing_protocol"]) == (
        "s3",
        "always",
        "sigv4",
    )
    (distribution,) = by_type["aws_cloudfront_distribution"]
    assert distribution["default_root_object"] == "index.html"
    (behavior,) = distribution["default_cache_behavior"]
    assert behavior["viewer_protocol_policy"] == "redirect-to-https" and behavior["compress"] is True
    (origin,) = distribution["origin"]
    assert not origin.get("s3_origin_config")

    objects = {values["key"]: values for values in by_type["aws_s3_object"]}
    assert sorted(objects) == exported(bundle)
    for key, values in objects.items():
        assert values["content_type"], key
        if extension(key) in REQUIRED_TYPES:
            assert essence(values["content_type"]) == REQUIRED_TYPES[extension(key)], key
        assert values["source_hash"], key
    assert set(plan["output_changes"]) >= {"web_bundle_url", "web_bundle_bucket_name"}


def test_plan_refuses_a_missing_folder_and_an_unmapped_file(root: Path, bundle: Path, tmp_path: Path) -> None:
    assert "web_bundle.source_dir is required" in plan_errors(root, web_bundle={"enabled": True})
    assert "docfn export-web" in plan_errors(root, web_bundle={"enabled": True, "source_dir": str(tmp_path)})
    odd = tmp_path / "odd"
    shutil.copytree(bundle, odd)
    (odd / "favicon.ico").write_bytes(b"\0")
    errors = plan_errors(root, web_bundle={"enabled": True, "source_dir": str(odd)})
    assert "No Content-Type for favicon.ico" in errors
    plan = plan_json(
        root, web_bundle={"enabled": True, "source_dir": str(odd), "content_types": {"ico": "image/x-icon"}}
    )
    (icon,) = [
        r
        for r in planned_resources(plan)
        if r["type"] == "aws_s3_object" and r["values"]["key"] == "favicon.ico"
    ]
    assert icon["values"]["content_type"] == "image/x-icon"
