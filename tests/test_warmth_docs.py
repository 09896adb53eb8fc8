"""The idle cost of each warmth option, as the READMEs state it ("Paying for warmth"), follows from
the configuration: Lambda memory and /tmp from Terraform's own evaluation of the tasks' defaults
(infra/terraform/variables.tf), Knative requests from the base rendered with kustomize, and the
list prices the README states once. A changed default memory or request fails here until the
docs are recomputed; no figure is copied."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from docfn_testkit.knative import KUSTOMIZATIONS, container_of, ksvcs
from docfn_testkit.kustomize import kustomize_build
from docfn_testkit.paths import ROOT
from docfn_testkit.terraform_env import Evaluated

README = ROOT / "README.md"
TF_README = ROOT / "infra" / "terraform" / "README.md"
KNATIVE_README = ROOT / "knative" / "README.md"
# Which rows each README must carry (the top-level one carries all).
REQUIRED_ROWS = {
    README: {"provisioned concurrency", "SnapStart snapshot cache", "SnapStart", "Knative min-scale"},
    TF_README: {"provisioned concurrency", "SnapStart snapshot cache"},
    KNATIVE_README: {"Knative min-scale"},
}
ROW = re.compile(
    r"^\| (?P<option>[^|]+?) \| (?P<task>[^|]+?) \| (?P<sized>[^|]+?) \| (?P<cost>[^|]+?) \|$", re.M
)


def section(path: Path) -> str:
    """The body of the file's "Paying for warmth" section, up to the next heading of its level or
    higher (a `#` line inside a code block is not a heading)."""
    lines, body, level, fenced = path.read_text().splitlines(), [], 0, False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        heading = re.match(r"(#+) ", line) if not fenced else None
        if level and heading and len(heading.group(1)) <= level:
            break
        if level:
            body.append(line)
        elif heading and line[heading.end() :].startswith("Paying for warmth"):
            level = len(heading.group(1))
    assert level, f"{path.relative_to(ROOT)} has no 'Paying for warmth' section"
    return "\n".join(body)


def stated(pattern: str) -> Decimal:
    """A figure the top-level README states once, in bold."""
    (value,) = re.findall(pattern, " ".join(section(README).split()))
    return Decimal(value)


@cache
def prices() -> dict[str, Decimal]:
    return {
        "provisioned": stated(r"provisioned concurrency \*\*([0-9.]+) USD per GB-second\*\*"),
        "cache": stated(r"SnapStart cache \*\*([0-9.]+) USD per GB-second\*\*"),
        "restore": stated(r"SnapStart restore \*\*([0-9.]+) USD per GB restored\*\*"),
        "hours": stated(r"a month is \*\*([0-9]+) hours\*\*"),
        "node_cpu": stated(r"\*\*m7i\.xlarge: ([0-9]+) vCPU, [0-9]+ GiB, [0-9.]+ USD per hour\*\*"),
        "node_gib": stated(r"\*\*m7i\.xlarge: [0-9]+ vCPU, ([0-9]+) GiB, [0-9.]+ USD per hour\*\*"),
        "node_hour": stated(r"\*\*m7i\.xlarge: [0-9]+ vCPU, [0-9]+ GiB, ([0-9.]+) USD per hour\*\*"),
    }


def usd(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return Evaluated(tmp_path_factory.mktemp("terraform-warmth-docs")).apply()["tasks"]


def expected_rows(tasks: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
    """(option, task) -> (sized by, idle cost per month), computed."""
    p = prices()
    month_seconds = p["hours"] * 3600
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    for task in ("ocr", "vlm"):
        memory = tasks[task]["memory_size"]
        gb = Decimal(memory) / 1024
        rows[("provisioned concurrency, 1 instance", task)] = (
            f"{memory} MB",
            f"{usd(p['provisioned'] * gb * month_seconds)} USD",
        )
    memory = tasks["ocr"]["memory_size"]
    gb = Decimal(memory) / 1024
    rows[("SnapStart snapshot cache", "ocr")] = (
        f"{memory} MB",
        f"{usd(p['cache'] * gb * month_seconds)} USD, "
        f"plus {usd(p['restore'] * gb * 1000)} USD per 1,000 restores",
    )
    # The VLM's /tmp (its pack) is over SnapStart's 512 MB: the module refuses it (test_warmth.py).
    assert tasks["vlm"]["ephemeral_storage"] > 512
    rows[("SnapStart", "vlm")] = (
        f"{tasks['vlm']['ephemeral_storage']} MB /tmp",
        "not possible: its 1.7 GB pack needs more than the 512 MB of /tmp SnapStart allows",
    )
    requests = {container_of(s)["resources"]["requests"]["cpu"] for s in ksvcs_base()}
    memory_requests = {container_of(s)["resources"]["requests"]["memory"] for s in ksvcs_base()}
    ((cpu,), (mem,)) = (requests, memory_requests)
    assert cpu.endswith("m") and mem.endswith("Gi"), (cpu, mem)
    share = max(Decimal(cpu[:-1]) / 1000 / p["node_cpu"], Decimal(mem[:-2]) / p["node_gib"])
    fraction = share.as_integer_ratio()
    rows[("Knative min-scale 1, one pod", "any task")] = (
        f"{mem} / {cpu} requests",
        f"{fraction[0]}/{fraction[1]} of a node: {usd(share * p['node_hour'] * p['hours'])} USD",
    )
    return rows


@cache
def base() -> list[dict[str, Any]]:
    return [d for d in kustomize_build(KUSTOMIZATIONS["base"]) if d]


def ksvcs_base() -> list[dict[str, Any]]:
    return list(ksvcs(base()).values())


@pytest.mark.parametrize("path", REQUIRED_ROWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_stated_idle_costs_follow_from_the_configuration(path: Path, tasks: dict[str, Any]) -> None:
    expected = expected_rows(tasks)
    found = {
        (m["option"], m["task"]): (m["sized"], m["cost"])
        for m in ROW.finditer(section(path))
        if m["option"] not in ("option", "---")
    }
    assert found, f"no cost table in {path.relative_to(ROOT)}"
    for key, value in found.items():
        assert key in expected, f"{path.relative_to(ROOT)}: unknown row {key}"
        assert value == expected[key], (
            f"{path.relative_to(ROOT)}: {key} says {value}, config gives {expected[key]}"
        )
    options = {option for option, _ in found}
    for required in REQUIRED_ROWS[path]:
        assert any(o.startswith(required) for o in options), f"{path.relative_to(ROOT)} misses {required}"


def test_the_docs_name_the_options_as_the_code_spells_them() -> None:
    text = section(README) + section(TF_README)
    assert "snap_start_tasks" in text and "provisioned_concurrency" in text
    assert "knative/components/warm" in section(README)
    assert "../../components/warm" in section(KNATIVE_README)
