"""The lock (requirements/, written by scripts/lock) is complete, consistent and what is installed:
every requirement pyproject.toml states is pinned there, the image's locks agree with the suite's,
and this venv holds exactly the lock's distributions at the lock's versions."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "requirements"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# "name==version \" (or "name[extras]==version \") followed by its "--hash=sha256:…" lines.
ENTRY = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)"
    r"((?: \\\n    --hash=sha256:[0-9a-f]{64}(?: \\)?)+)",
    re.M,
)


def pins(lock: str) -> dict[str, Version]:
    text = (LOCKS / lock).read_text()
    found = {canonicalize_name(m.group(1)): Version(m.group(2)) for m in ENTRY.finditer(text)}
    # Every pinned line carries hashes: a line without would not match ENTRY and go missing here.
    listed = re.findall(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?==", text, re.M)
    assert len(found) == len(listed), f"{lock}: a pin without --hash lines"
    return found


def test_every_requirement_of_pyproject_is_pinned_within_its_range() -> None:
    dev, build = pins("dev.txt"), pins("build.txt")
    project = PYPROJECT["project"]
    extras = project["optional-dependencies"].values()
    stated = [*project["dependencies"], *(requirement for extra in extras for requirement in extra)]
    for lock, requirements in ((dev, stated), (build, PYPROJECT["build-system"]["requires"])):
        for text in requirements:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            assert name in lock, f"{text} is not in the lock: run scripts/lock"
            assert requirement.specifier.contains(lock[name], prereleases=True), (
                f"{text}: the lock pins {lock[name]}; run scripts/lock"
            )


@pytest.mark.parametrize("lock", ["runtime.txt", *sorted(p.name for p in LOCKS.glob("task-*.txt"))])
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
    installed.pop("pip", None)  # the venv's own installer (python -m venv seeds it; sync leaves it)
    assert installed == pins("dev.txt")
