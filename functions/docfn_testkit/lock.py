"""Reading the lock (requirements/*.txt, written by scripts/lock) and what pyproject.toml asks of it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .paths import ROOT

# "name==version \" (or "name[extras]==version \") followed by its "--hash=sha256:…" lines.
ENTRY = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)"
    r"((?: \\\n    --hash=sha256:[0-9a-f]{64}(?: \\)?)+)",
    re.M,
)
PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?==", re.M)


def pins(lock: Path) -> dict[str, Version]:
    """Each distribution the lock file pins, at its version; every pin must carry hashes."""
    text = lock.read_text()
    found = {canonicalize_name(m.group(1)): Version(m.group(2)) for m in ENTRY.finditer(text)}
    if len(found) != len(PIN.findall(text)):
        raise ValueError(f"{lock}: a pin without --hash lines")
    return found


def unmet(root: Path = ROOT) -> list[str]:
    """What pyproject.toml requires (dependencies, every extra, the build backend) that the lock in
    ``root``/requirements does not pin within range: empty when the lock is complete."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    project = pyproject["project"]
    stated = [
        *project["dependencies"],
        *(r for extra in project["optional-dependencies"].values() for r in extra),
    ]
    problems = []
    for lock, requirements in (
        (pins(root / "requirements" / "dev.txt"), stated),
        (pins(root / "requirements" / "build.txt"), pyproject["build-system"]["requires"]),
    ):
        for text in requirements:
            requirement = Requirement(text)
            pinned = lock.get(canonicalize_name(requirement.name))
            if pinned is None or not requirement.specifier.contains(pinned, prereleases=True):
                problems.append(f"{text}: the lock pins {pinned}")
    return problems
