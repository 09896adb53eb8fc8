"""README's Contributing section, run as shown: re-locking (plain and --upgrade) in a copy of the
checkout with nothing beside it, and the quick suite's selection."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from docfn_testkit.checkout import copy_checkout
from docfn_testkit.lock import pins, unmet
from docfn_testkit.paths import ROOT

pytestmark = pytest.mark.walkthrough
SECTION = re.search(r"^## Contributing\n(.*?)^## ", (ROOT / "README.md").read_text(), re.M | re.S)
FENCE = re.compile(r"```sh\n(.*?)```", re.S)


def shown() -> list[str]:
    assert SECTION, "README.md has a Contributing section"
    return [line.strip() for block in FENCE.findall(SECTION.group(1)) for line in block.splitlines() if line]


def run(command: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTEST_ADDOPTS")}
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def collected(pytest_output: str) -> int:
    """N from pytest's "N tests collected" or "N/M tests collected (… deselected)"."""
    return int(re.search(r"(\d+)(?:/\d+)? tests? collected", pytest_output).group(1))


def test_the_section_shows_these_commands() -> None:
    assert shown() == [
        "scripts/lock",
        "scripts/lock --upgrade && scripts/test",
        "scripts/test --quick",
        "scripts/test --quick tests/test_cache.py -x",
    ]


def test_relocking_an_unchanged_project_changes_nothing(tmp_path: Path) -> None:
    """`scripts/lock` keeps every pin it can: on the repository as committed, the lock is current."""
    clone = copy_checkout(tmp_path / "docfn")
    done = run("scripts/lock", clone, timeout=600)
    assert done.returncode == 0, done.stderr
    for lock in sorted((ROOT / "requirements").glob("*.txt")):
        assert (clone / "requirements" / lock.name).read_text() == lock.read_text(), f"{lock.name} is stale"


def test_upgrading_relocks_within_pyproject(tmp_path: Path) -> None:
    """The first half of the upgrade command (the second is the suite, CI's own command): every pin
    moves to the newest release pyproject.toml allows, and the lock stays complete and hashed."""
    clone = copy_checkout(tmp_path / "docfn")
    done = run("scripts/lock --upgrade", clone, timeout=600)
    assert done.returncode == 0, done.stderr
    assert unmet(clone) == []
    upgraded, locked = pins(clone / "requirements" / "dev.txt"), pins(ROOT / "requirements" / "dev.txt")
    assert all(upgraded[name] >= version for name, version in locked.items() if name in upgraded)


def test_the_quick_suite_leaves_out_the_slow_groups() -> None:
    """`scripts/test --quick` as shown, collecting only: the run itself is the quick suite."""
    quick = run("scripts/test --quick --collect-only -q", ROOT, timeout=600)
    assert quick.returncode == 0, quick.stderr
    every = run(".venv/bin/python -m pytest --collect-only -q", ROOT, timeout=600)
    counts = [
        int(re.search(r"(\d+)(?:/\d+)? tests? collected", out.stdout).group(1)) for out in (quick, every)
    ]
    assert 0 < counts[0] < counts[1]
    # Every marker pyproject.toml registers is a slow group, and scripts/test leaves out each one.
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    groups = " or ".join(marker.split(":")[0] for marker in markers)
    assert f'slow="{groups}"' in (ROOT / "scripts" / "test").read_text()
    slow = run(f".venv/bin/python -m pytest --collect-only -q -m '{groups}'", ROOT, timeout=600)
    assert collected(slow.stdout) == counts[1] - counts[0]


def test_the_quick_suite_takes_pytest_arguments() -> None:
    done = run("scripts/test --quick tests/test_cache.py -x", ROOT, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\d+ passed", done.stdout)
