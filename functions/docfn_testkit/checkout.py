"""This checkout as a clone of the work would have it, copied elsewhere: what a new user starts from."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .paths import ROOT


def checkout_files() -> list[str]:
    """The checkout's files a clone of this work has: tracked (as they are now) and new, not ignored."""
    done = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return [name for name in done.stdout.decode().split("\0") if name]


def copy_checkout(target: Path) -> Path:
    """``target`` holding the checkout's files (uncommitted changes included), nothing else."""
    for name in checkout_files():
        source = ROOT / name
        if not source.exists() and not source.is_symlink():  # deleted, not yet committed
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name, follow_symlinks=False)
    return target
