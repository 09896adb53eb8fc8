"""The lock (requirements/, written by scripts/lock) is complete, consistent and what is installed:
every requirement pyproject.toml states is pinned there, the image's locks agree with the suite's,
and this venv holds exactly the lock's distributions at the lock's versions."""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from docfn_testkit.lock import pins as lock_pins
from docfn_testkit.lock import unmet
from docfn_testkit.paths import ROOT

LOCKS = ROOT / "requirements"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def pins(lock: str) -> dict[str, Version]:
    return lock_pins(LOCKS / lock)


def test_every_requirement_of_pyproject_is_pinned_within_its_range() -> None:
    assert unmet() == [], "run scripts/lock"


@pytest.mark.parametrize(
    "lock", ["runtime.txt", "local.txt", *sorted(p.name for p in LOCKS.glob("task-*.txt"))]
)
def test_image_locks_pin_what_the_suite_runs_with(lock: str) -> None:
    dev = pins("dev.txt")
    for name, version in pins(lock).items():
        assert dev.get(name) == version, f"{lock} pins {name} {version}, dev.txt {dev.get(name)}"


def test_each_task_extra_has_its_lock() -> None:
    extras = {e for e in PYPROJECT["project"]["optional-dependencies"] if e.startswith("task-")}
    assert {p.stem for p in LOCKS.glob("task-*.txt")} == extras


def test_the_venv_holds_exactly_the_lock() -> None:
    """scripts/setup --dev syncs the venv to requirements/dev.txt (uv pip sync): nothing more, nothing
    less, no other version; docfn itself is the editable install beside it."""
    if sys.prefix == sys.base_prefix:
        pytest.fail("the suite runs in the venv scripts/setup makes (.venv)")
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in metadata.distributions()}
    installed.pop("docfn")
    assert installed == pins("dev.txt")
