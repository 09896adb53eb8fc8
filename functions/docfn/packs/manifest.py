"""The pack manifest (``manifest.json``) and verification of a pack directory against it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ConfigurationError

MANIFEST_NAME = "manifest.json"
# The accuracy a VLM pack's manifest records (``docfn models export-vlm``): greedy tokens of each
# decoder precision against transformers' generate() on the same weights.
VLM_PARITY_METRIC = "greedy_token_agreement_vs_transformers"
# A VLM pack's vision tower (``export-vlm --vision-precision``): int8 encodes ~2.3x faster than fp32
# at MinerU2.5's size (docs/benchmarks/vlm_2026-11-26.md), its block features at cosine 0.9994 with
# fp32's; the manifest records the figures per pack.
VISION_PRECISIONS = ("fp32", "int8")
DEFAULT_VISION_PRECISION = "int8"
SCHEMA = "docfn.pack/v1"


class PackVerificationError(ConfigurationError):
    """A pack file is missing, has the wrong size, or the wrong sha256: the pack must not be used."""

    code = "pack_verification_failed"


@dataclass(frozen=True)
class PackFile:
    path: str
    sha256: str
    size: int
    role: str = ""


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    tasks: list[str]
    runtime: str
    precision: str
    files: list[PackFile]
    source: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pack_id(self) -> str:
        return f"{self.name}@{self.version}"

    def file(self, role: str) -> PackFile:
        for entry in self.files:
            if entry.role == role:
                return entry
        raise ConfigurationError(f"pack {self.pack_id} has no file with role {role!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "name": self.name,
            "version": self.version,
            "tasks": self.tasks,
            "runtime": self.runtime,
            "precision": self.precision,
            "source": self.source,
            "config": self.config,
            "accuracy": self.accuracy,
            "files": [vars(f) for f in self.files],
            **self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        known = {"schema", "name", "version", "tasks", "runtime", "precision", "source", "config", "accuracy"}
        try:
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                tasks=list(data["tasks"]),
                runtime=str(data["runtime"]),
                precision=str(data["precision"]),
                files=[PackFile(**entry) for entry in data["files"]],
                source=dict(data.get("source", {})),
                config=dict(data.get("config", {})),
                accuracy=dict(data.get("accuracy", {})),
                extra={k: v for k, v in data.items() if k not in known | {"files"}},
            )
        except (KeyError, TypeError) as exc:
            raise ConfigurationError(f"malformed pack manifest: missing or bad field {exc}") from exc

    @classmethod
    def load(cls, pack_dir: Path) -> Manifest:
        path = pack_dir / MANIFEST_NAME
        if not path.is_file():
            raise ConfigurationError(f"no model pack manifest at {path}")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except ValueError as exc:
            raise ConfigurationError(f"manifest {path} is not valid JSON: {exc}") from exc

    def write(self, pack_dir: Path) -> Path:
        path = pack_dir / MANIFEST_NAME
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        tmp.replace(path)
        return path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def describe_file(pack_dir: Path, relative: str, role: str) -> PackFile:
    path = pack_dir / relative
    return PackFile(path=relative, sha256=sha256_file(path), size=path.stat().st_size, role=role)


def verify_file(path: Path, expected: PackFile) -> None:
    if not path.is_file():
        raise PackVerificationError(f"pack file {expected.path} is missing")
    size = path.stat().st_size
    if size != expected.size:
        raise PackVerificationError(
            f"pack file {expected.path} has {size} bytes, manifest says {expected.size}"
        )
    actual = sha256_file(path)
    if actual != expected.sha256:
        raise PackVerificationError(
            f"pack file {expected.path} sha256 {actual[:12]}… does not match manifest {expected.sha256[:12]}…"
        )


def verify_pack(pack_dir: Path) -> Manifest:
    """Load the manifest and check every file it lists; raise before anything is used."""
    manifest = Manifest.load(pack_dir)
    for entry in manifest.files:
        if Path(entry.path).is_absolute() or ".." in Path(entry.path).parts:
            raise PackVerificationError(f"pack file path {entry.path!r} escapes the pack directory")
        verify_file(pack_dir / entry.path, entry)
    return manifest
