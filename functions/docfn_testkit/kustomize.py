"""Render a kustomization as `kubectl apply -k` would: with the real kustomize, `kubectl kustomize DIR`.

Self-contained on purpose (no other test helper, no pytest), so it can move with the shared test
helpers. kubectl embeds kustomize; scripts/test refuses to run without a recent enough kubectl, so a
missing one is an error here, never a skip: the manifests must not go unchecked.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize directory` renders, in its order."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError(
            "kubectl is not on PATH: the tests render knative/ with `kubectl kustomize`"
            " (install kubectl >= 1.27; scripts/test checks for it)"
        )
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]
