#!/usr/bin/env python3
"""Assemble a function image's runtime environment into a directory and report its size.

No Docker engine runs here, so this does what functions/Dockerfile's builder stage does, step for
step: build the project wheel, create a fresh venv, install the wheel with its runtime dependencies
only (no dev/export extras) plus awslambdaric from binary wheels, drop pip/setuptools, byte-compile.
The resulting venv is what the image's final stage copies to /opt/venv, so its installed size is
our image-size figure (plus the python:3.11-slim base layer, which every image shares).

    python scripts/assemble_runtime.py [--out DIR] [--json docs/benchmarks/runtime-size.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))

from docfn.core.settings import ALL_TASKS  # noqa: E402

FORBIDDEN = ("torch", "transformers")  # build-time only (model export); never in a function image
RUNTIME_CLIENT = "awslambdaric>=3.0"  # the same requirement the Dockerfile installs

# Runs inside the assembled venv: which distribution owns each top-level site-packages entry.
_OWNERS = r"""
import json, sys
from importlib import metadata
owners = {}
for dist in metadata.distributions():
    for file in dist.files or []:
        top = file.parts[0]
        if top.endswith(".dist-info") or top in {"..", "bin"} or top.startswith("__"):
            continue
        owners.setdefault(top.split(".py")[0] if top.endswith(".py") else top, dist.metadata["Name"])
print(json.dumps({"site": [p for p in sys.path if p.endswith("site-packages")][0], "owners": owners}))
"""


def run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], check=True, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload]


def tree_size(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def assemble(target: Path) -> dict[str, object]:
    wheels = Path(tempfile.mkdtemp(prefix="docfn-wheel-"))
    started = time.perf_counter()
    try:
        run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", wheels, ROOT)
        run(sys.executable, "-m", "venv", target)
        python = target / "bin" / "python"
        wheel = next(wheels.glob("docfn-*.whl"))
        run(python, "-m", "pip", "install", "--quiet", "--only-binary=:all:", wheel, RUNTIME_CLIENT)
    finally:
        shutil.rmtree(wheels, ignore_errors=True)
    run(python, "-m", "pip", "uninstall", "-y", "pip", "setuptools", "wheel")
    run(python, "-m", "compileall", "-q", "-j", "0", target / "lib")
    return {"assemble_seconds": round(time.perf_counter() - started, 1)}


def report(target: Path) -> dict[str, object]:
    python = target / "bin" / "python"
    info = json.loads(run(python, "-c", _OWNERS).stdout)
    site = Path(info["site"])
    owners: dict[str, str] = info["owners"]
    per_dist: dict[str, int] = {}
    for entry in site.iterdir():
        if entry.name.endswith(".dist-info"):
            owner = entry.name.split("-")[0]
        else:
            name = entry.name[: -len(".py")] if entry.name.endswith(".py") else entry.name
            owner = owners.get(name) or owners.get(entry.name) or entry.name
        key = owner.lower().replace("_", "-")
        per_dist[key] = per_dist.get(key, 0) + tree_size(entry)
    present = [name for name in FORBIDDEN if name in per_dist]
    assert not present, f"{present} must never ship in a function image"
    for name in FORBIDDEN:
        probe = subprocess.run([str(python), "-c", f"import {name}"], capture_output=True)
        assert probe.returncode != 0, f"{name} is importable in the runtime environment"

    # The handler import the image's CMD performs at Lambda init, in this fresh environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCFN_")}
    env.update(AWS_LAMBDA_FUNCTION_NAME="docfn-ocr", DOCFN_TASKS="ocr")
    probe = (
        "import time, sys; t = time.perf_counter(); import docfn.adapters.aws_lambda.handler; "
        "print(round(time.perf_counter() - t, 3), 'boto3' in sys.modules, 'onnxruntime' in sys.modules)"
    )
    imports = []
    for _ in range(3):
        out = run(python, "-c", probe, env=env, cwd=tempfile.gettempdir()).stdout.split()
        imports.append(float(out[0]))
        assert out[1:] == ["False", "False"], "handler import must not import boto3 or onnxruntime"

    total = tree_size(target)
    top = sorted(per_dist.items(), key=lambda item: item[1], reverse=True)[:10]
    return {
        "total_bytes": total,
        "site_packages_bytes": tree_size(site),
        "per_task_bytes": dict.fromkeys(ALL_TASKS, total),
        "top_packages": [{"name": name, "bytes": size} for name, size in top],
        "forbidden_absent": list(FORBIDDEN),
        "handler_import_seconds": imports,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="assemble here (default: a temporary directory, removed)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON")
    args = parser.parse_args()
    target = args.out or Path(tempfile.mkdtemp(prefix="docfn-runtime-")) / "venv"
    if target.exists():
        shutil.rmtree(target)
    try:
        result = {**assemble(target), **report(target)}
    finally:
        if args.out is None:
            shutil.rmtree(target.parent, ignore_errors=True)
    mib = 1024 * 1024
    print(f"runtime environment (/opt/venv): {result['total_bytes'] / mib:.1f} MiB")
    print("per task (same dependencies today; images differ only in ENV DOCFN_TASKS):")
    for task, size in result["per_task_bytes"].items():  # type: ignore[union-attr]
        print(f"  {task:<10} {size / mib:8.1f} MiB")
    print("largest packages:")
    for item in result["top_packages"]:  # type: ignore[union-attr]
        print(f"  {item['name']:<28} {item['bytes'] / mib:8.1f} MiB")
    print(f"torch/transformers: absent; handler import (s): {result['handler_import_seconds']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
