"""The optional web bundle of infra/terraform (web.tf, modules/web_bundle) planned and evaluated by
Terraform itself, offline.

``plan_web_bundle`` plans a scratch root module made from the module's own files: variables.tf
verbatim, the locals web.tf uses (hcl.py/terraform_env.py helpers), web.tf verbatim, the outputs of
outputs.tf that read ``module.web_bundle``, and modules/web_bundle copied beside them. Only the
provider block is the test's: static fake credentials and every account/metadata lookup skipped, so
`terraform plan` runs with no network and no AWS account (nothing is read from AWS while planning
new resources, and the module has no data source that calls AWS). The AWS provider comes from a
local plugin directory (``aws_provider_plugin_dir``); none can be downloaded here.

``web_bundle_locals`` evaluates the submodule's provider-free locals (the files it uploads, their
content types and cache headers, the isolation headers) over a real folder, with no provider at all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .hcl import TF_DIR
from .terraform_env import (
    apply_outputs,
    local_definitions,
    module_locals,
    needed_locals,
    placeholder_references,
    terraform,
    terraform_cli,
    top_level_blocks,
    var_flags,
)

WEB_BUNDLE_DIR = TF_DIR / "modules" / "web_bundle"

# Where a provider plugin directory (registry.terraform.io/hashicorp/aws/<version>/<os_arch>/)
# may be: terraform's own plugin cache ($TF_PLUGIN_CACHE_DIR, same layout), the machine's
# /opt/tf-plugins, the user's plugin folder.
PLUGIN_DIR_CANDIDATES = (
    os.environ.get("TF_PLUGIN_CACHE_DIR", ""),
    "/opt/tf-plugins",
    str(Path.home() / ".terraform.d" / "plugins"),
)

OFFLINE_PROVIDER = """
provider "aws" {
  region                      = "eu-west-1"
  access_key                  = "offline-plan"
  secret_key                  = "offline-plan"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}
"""


def terraform_binary() -> str:
    binary = terraform_cli()
    if binary is None:
        pytest.skip("no terraform/tofu binary on PATH (a plan needs the CLI and a provider)")
    return binary


def aws_provider_plugin_dir() -> Path:
    """A plugin directory holding hashicorp/aws, or skip naming where it was looked for."""
    for candidate in PLUGIN_DIR_CANDIDATES:
        if candidate and any(
            Path(candidate).glob("registry.terraform.io/hashicorp/aws/*/*/terraform-provider-aws*")
        ):
            return Path(candidate)
    pytest.skip(
        f"no hashicorp/aws provider in a plugin directory ({', '.join(filter(None, PLUGIN_DIR_CANDIDATES))})"
    )


# No user CLI config: the plugin directory is given to init explicitly.
PLAN_ENV = {"TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}


def run_terraform(directory: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """``terraform ARGS`` in ``directory`` by the CLI (a plan needs it), as a CompletedProcess."""
    terraform_binary()
    code, out, err = terraform(directory, *args, timeout=timeout, env=PLAN_ENV)
    return subprocess.CompletedProcess(["terraform", *args], code, out, err)


def web_bundle_root(directory: Path) -> Path:
    """The scratch root module described above, written into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    web = (TF_DIR / "web.tf").read_text()
    shutil.copy(TF_DIR / "variables.tf", directory / "variables.tf")
    (directory / "web.tf").write_text(web)
    definitions = module_locals()
    names = needed_locals([web], definitions)
    body = "\n".join(placeholder_references(definitions[name]) for name in names)
    (directory / "locals.tf").write_text("locals {\n" + body + "\n}\n")
    outputs = [
        block
        for block in top_level_blocks((TF_DIR / "outputs.tf").read_text(), r'output "[a-z0-9_]+"')
        if "module.web_bundle" in block
    ]
    assert outputs, "outputs.tf has no output that reads module.web_bundle"
    (directory / "outputs.tf").write_text("\n\n".join(outputs) + "\n")
    (directory / "provider.tf").write_text(OFFLINE_PROVIDER)
    shutil.copytree(WEB_BUNDLE_DIR, directory / "modules" / "web_bundle")
    done = run_terraform(
        directory,
        "init",
        "-input=false",
        "-no-color",
        "-backend=false",
        f"-plugin-dir={aws_provider_plugin_dir()}",
    )
    assert done.returncode == 0, f"terraform init failed:\n{done.stdout}\n{done.stderr}"
    return directory


def plan_json(directory: Path, **variables: Any) -> dict[str, Any]:
    """`terraform plan` with -var values (JSON-encoded unless strings), as `terraform show -json`."""
    done = run_terraform(
        directory, "plan", "-input=false", "-no-color", "-out=plan.bin", *var_flags(variables)
    )
    if done.returncode != 0:
        raise AssertionError(f"terraform plan failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    shown = run_terraform(directory, "show", "-json", "-no-color", "plan.bin")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def plan_errors(directory: Path, **variables: Any) -> str:
    """The diagnostics of a plan that must fail."""
    with pytest.raises(AssertionError) as failed:
        plan_json(directory, **variables)
    return re.sub(r"\s+", " ", str(failed.value))


def planned_resources(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource a plan would create: {"address", "type", "values", ...} from resource_changes."""
    return [
        {**change, "values": change["change"]["after"] or {}}
        for change in plan.get("resource_changes", [])
        if "create" in change["change"]["actions"] and change["mode"] == "managed"
    ]


WEB_LOCALS = ("files", "content_types", "cache_control", "isolation_headers")


def web_bundle_locals(source_dir: Path, scratch: Path, **variables: Any) -> dict[str, Any]:
    """The submodule's provider-free locals over ``source_dir``, applied by the Terraform core."""
    scratch.mkdir(parents=True, exist_ok=True)
    shutil.copy(WEB_BUNDLE_DIR / "variables.tf", scratch / "variables.tf")
    definitions = local_definitions((WEB_BUNDLE_DIR / "main.tf").read_text())
    names = needed_locals([f"local.{name}" for name in WEB_LOCALS], definitions)
    (scratch / "locals.tf").write_text("locals {\n" + "\n".join(definitions[n] for n in names) + "\n}\n")
    (scratch / "outputs.tf").write_text(
        "\n".join(f'output "{name}" {{ value = local.{name} }}' for name in WEB_LOCALS) + "\n"
    )
    return apply_outputs(scratch, *var_flags({"source_dir": str(source_dir), **variables}))
