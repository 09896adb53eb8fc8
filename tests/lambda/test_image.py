"""The container image's runtime contract, read from functions/Dockerfile (no Docker engine here)."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

from docfn_testkit.paths import ROOT

DOCKERFILE = ROOT / "functions" / "Dockerfile"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|build-essential|make|cmake|clang|autoconf|automake|libtool)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, instruction: str) -> list[str]:
        return [value for op, value in self.instructions if op == instruction]


def parse_dockerfile(text: str) -> tuple[list[tuple[str, str]], list[Stage]]:
    """Instructions (comments dropped, continuations joined) and the stages they belong to."""
    logical: list[str] = []
    buffer = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        logical.append(buffer + stripped)
        buffer = ""
    preamble: list[tuple[str, str]] = []
    stages: list[Stage] = []
    for entry in logical:
        op, _, value = entry.partition(" ")
        op = op.upper()
        if op == "FROM":
            parts = value.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None))
        elif stages:
            stages[-1].instructions.append((op, value.strip()))
        else:
            preamble.append((op, value.strip()))
    return preamble, stages


def test_dockerfile_runtime_contract() -> None:
    preamble, stages = parse_dockerfile(DOCKERFILE.read_text())
    assert len(stages) >= 2, "multi-stage: a builder and a runtime stage"
    builder, final = stages[0], stages[-1]
    # The default base is pinned by digest (a tag moves); the builds here pass a local base instead.
    (base,) = [value for op, value in preamble if op == "ARG" and value.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base), base
    assert builder.base == "${PYTHON_IMAGE}"
    # The runtime is one flattened system layer (the Python base, pruned: a file deleted in a later
    # layer would still ship), then the shared venv, then the task's own extra.
    (system,) = [stage for stage in stages if stage.name == "system"]
    assert system.base == "${PYTHON_IMAGE}" and final.base == "scratch"

    # The final stage installs nothing: no package manager, no pip, no compilers.
    for op, value in final.instructions:
        if op == "RUN":
            assert not BUILD_TOOLS.search(value) and "apt-get" not in value and "pip" not in value, value
    copies = final.args("COPY")
    assert copies == [
        "--from=system / /",
        "--from=builder /opt/venv /opt/venv",
        "--from=task_dependencies /opt/task/ /opt/venv/",
        "--from=task_web /opt/task-web/ /",
    ], "only the system, the assembled venv, the task's extra and the ocr image's browser assets"

    # Runtime deps only: no torch/transformers, no export/dev extras, no model files anywhere.
    everything = " ".join(value for stage in stages for _, value in stage.instructions)
    assert "torch" not in everything.replace('"import torch"', "")
    assert "[dev]" not in everything and "[export]" not in everything
    for stage in stages:
        for value in stage.args("COPY"):
            assert not re.search(r"\.(onnx|safetensors|bin|pt)\b|models/|\.docfn", value), value
    assert "awslambdaric" in " ".join(builder.args("RUN"))

    # ARG TASK parameterises the function; the runtime reads it as DOCFN_TASKS.
    assert "TASK=ocr" in final.args("ARG")
    assert any("DOCFN_TASKS=${TASK}" in env for env in final.args("ENV"))
    assert any("PATH=/opt/venv/bin:" in env for env in final.args("ENV"))  # `docfn serve` on Knative

    assert json.loads(final.args("ENTRYPOINT")[-1]) == ["python", "-m", "awslambdaric"]
    (handler,) = json.loads(final.args("CMD")[-1])
    assert handler == "docfn.adapters.aws_lambda.handler.handler"
    module_name, _, attribute = handler.rpartition(".")
    resolved = getattr(importlib.import_module(module_name), attribute)
    from docfn.adapters.aws_lambda.handler import handler as implementation

    assert callable(resolved) and resolved is implementation


def test_dockerignore_keeps_models_and_state_out() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*" and "!functions/docfn/" in rules
    assert "**/*.onnx" in rules and "**/__pycache__" in rules


def test_lambda_init_is_imports_only() -> None:
    """Importing the handler (Lambda's init phase) loads no model and creates no AWS client."""
    probe = (
        "import sys, time; t = time.perf_counter(); import docfn.adapters.aws_lambda.handler as h; "
        "elapsed = time.perf_counter() - t; "
        "print(elapsed, h._runtime is None, *(m in sys.modules for m in ('boto3', 'onnxruntime', 'cv2')))"
    )
    env = {**os.environ, "AWS_LAMBDA_FUNCTION_NAME": "docfn-ocr", "DOCFN_TASKS": "ocr"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    elapsed, *flags = out.stdout.split()
    assert flags == ["True", "False", "False", "False"], out.stdout
    assert float(elapsed) < 5.0  # about 0.3 s here; the bound only catches a model load sneaking in
