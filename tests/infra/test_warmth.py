"""Paying for warmth on Lambda (issue "Scale to zero without paying for it"): SnapStart and
provisioned concurrency as Terraform options, off by default.

The wiring is read from the HCL (python-hcl2); the validation is Terraform's own, evaluated offline
(variables.tf + warmth.tf, docfn_testkit/terraform_env.py): what AWS refuses (SnapStart with
ephemeral storage over 512 MB or with provisioned concurrency) is refused at plan time.
"""

from __future__ import annotations

import pytest

from docfn_testkit.hcl import attr, blocks, dynamic_contents, module, text_of
from docfn_testkit.terraform_env import Evaluated


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Evaluated:
    return Evaluated(tmp_path_factory.mktemp("terraform-warmth"))


def test_snap_start_on_published_versions_only_for_the_chosen_tasks() -> None:
    function = module().resource("aws_lambda_function", "this")
    # SnapStart snapshots published versions: such a task must publish one on every change.
    assert attr(function, "publish").replace(" ", "") == "${contains(local.aliased_tasks,each.key)}"
    (snap_start,) = dynamic_contents(function, "snap_start")
    assert attr(snap_start, "apply_on") == "PublishedVersions"
    (dynamic,) = [d["snap_start"] for d in blocks(function, "dynamic") if "snap_start" in d]
    assert "var.snap_start_tasks" in text_of(dynamic)


def test_an_alias_on_the_published_version_carries_provisioned_concurrency() -> None:
    config = module()
    alias = config.resource("aws_lambda_alias", "live")
    assert attr(alias, "for_each") == "${local.aliased_tasks}"
    assert attr(alias, "function_version") == "${aws_lambda_function.this[each.key].version}"
    provisioned = config.resource("aws_lambda_provisioned_concurrency_config", "live")
    assert attr(provisioned, "for_each") == "${var.provisioned_concurrency}"
    assert attr(provisioned, "qualifier") == "${aws_lambda_alias.live[each.key].name}"
    assert attr(provisioned, "provisioned_concurrent_executions") == "${each.value}"


def test_every_trigger_calls_the_alias_when_there_is_one() -> None:
    config = module()
    url = config.resource("aws_lambda_function_url", "this")
    assert attr(url, "qualifier") == "${local.invoke_qualifiers[each.key]}"
    for name in ("function_url_public", "function_url_public_invoke", "api"):
        permission = config.resource("aws_lambda_permission", name)
        assert attr(permission, "qualifier") == "${local.invoke_qualifiers[each.key]}", name
    integration = config.resource("aws_apigatewayv2_integration", "this")
    assert attr(integration, "integration_uri") == "${local.invoke_uris[each.key]}"
    mapping = config.resource("aws_lambda_event_source_mapping", "this")
    assert attr(mapping, "function_name") == "${local.invoke_arns[each.key]}"
    # Callers holding the invoke policy may call the alias (a qualified ARN is a resource of its own).
    assert "values(local.invoke_arns)" in text_of(config.datasource("aws_iam_policy_document", "invoke"))
    for local in ("invoke_arns", "invoke_uris", "invoke_qualifiers"):
        assert "aws_lambda_alias.live[task]" in text_of(config.locals[local]), local


def test_warmth_is_off_by_default(evaluated: Evaluated) -> None:
    assert evaluated.apply()["aliased_tasks"] == []


def test_snap_start_and_provisioned_concurrency_apply_per_task(evaluated: Evaluated) -> None:
    outputs = evaluated.apply(
        tasks={"ocr": {"ephemeral_storage": 512}, "layout": {}, "vlm": {}},
        snap_start_tasks=["ocr"],
        provisioned_concurrency={"vlm": 1},
    )
    assert sorted(outputs["aliased_tasks"]) == ["ocr", "vlm"]


def test_what_aws_refuses_is_refused_at_plan_time(evaluated: Evaluated) -> None:
    # The default tasks keep 1024 MB or more of /tmp: SnapStart needs 512.
    assert "SnapStart needs ephemeral_storage = 512" in evaluated.errors(snap_start_tasks=["ocr"])
    both = evaluated.errors(
        tasks={"ocr": {"ephemeral_storage": 512}},
        snap_start_tasks=["ocr"],
        provisioned_concurrency={"ocr": 1},
    )
    assert "cannot have both SnapStart and provisioned concurrency" in both
    assert "only deployed tasks" in evaluated.errors(tasks={"ocr": {}}, provisioned_concurrency={"vlm": 1})
    assert "must be task names" in evaluated.errors(snap_start_tasks=["bogus"])
    for count in (0, 1.5, 1001):
        assert "whole numbers between 1 and 1000" in evaluated.errors(provisioned_concurrency={"ocr": count})
    assert "cannot exceed its reserved_concurrency" in evaluated.errors(
        tasks={"ocr": {"reserved_concurrency": 2}}, provisioned_concurrency={"ocr": 3}
    )
