"""infra/terraform read with python-hcl2: the module's and its examples' top-level declarations
(resources, data sources, variables, outputs, module calls, locals), their attributes and nested
blocks, normalised across python-hcl2 releases. (Evaluated by Terraform itself: terraform_env.py.)"""

from __future__ import annotations

import io
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

from .paths import ROOT

TF_DIR = ROOT / "infra" / "terraform"
EXAMPLES_DIR = TF_DIR / "examples"
EXAMPLE_DIRS = sorted(p for p in EXAMPLES_DIR.iterdir() if p.is_dir()) if EXAMPLES_DIR.is_dir() else []
# Submodules the module calls (modules/web_bundle: the optional static web bundle).
SUBMODULES_DIR = TF_DIR / "modules"
SUBMODULE_DIRS = sorted(p for p in SUBMODULES_DIR.iterdir() if p.is_dir()) if SUBMODULES_DIR.is_dir() else []


# --------------------------------------------------------------------------------------
# python-hcl2 output, normalised. python-hcl2 < 5 (and checkov's bc-python-hcl2 fork, which
# installs the same `hcl2` module) wraps every attribute in a one-element list and leaves
# strings bare; newer releases keep attributes unwrapped, quote strings and labels, and
# mark blocks with __is_block__. The helpers below read both.
# --------------------------------------------------------------------------------------

_WRAPPED = isinstance(hcl2.load(io.StringIO('a = "x"\n'))["a"], list)


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def norm(value: Any) -> Any:
    if isinstance(value, str):
        return unquote(value)
    if isinstance(value, dict):
        return {unquote(k): norm(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [norm(v) for v in value]
    return value


def attr(body: dict, name: str, default: Any = None) -> Any:
    """An attribute of a block body (never a nested block)."""
    if name not in body:
        return default
    value = body[name]
    if _WRAPPED and isinstance(value, list) and len(value) == 1:
        value = value[0]
    return norm(value)


def blocks(body: dict, name: str) -> list[dict]:
    """Nested blocks of a type (a list of bodies), including none."""
    value = body.get(name, [])
    if isinstance(value, dict):
        value = [value]
    return [norm(v) for v in value if isinstance(v, dict)]


def dynamic_contents(body: dict, name: str) -> list[dict]:
    """`content` bodies of the `dynamic "<name>"` blocks in a body."""
    found = []
    for dyn in blocks(body, "dynamic"):
        for label, dyn_body in dyn.items():
            if label == name:
                for dyn_body_item in dyn_body if isinstance(dyn_body, list) else [dyn_body]:
                    found.extend(blocks(dyn_body_item, "content"))
    return found


def text_of(value: Any) -> str:
    """Everything in a value as one string, for searching expressions."""
    return json.dumps(value, default=str)


class Config:
    """The top-level declarations of one Terraform directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.resources: dict[tuple[str, str], dict] = {}
        self.data: dict[tuple[str, str], dict] = {}
        self.variables: dict[str, dict] = {}
        self.outputs: dict[str, dict] = {}
        self.modules: dict[str, dict] = {}
        self.locals: dict[str, Any] = {}
        self.terraform: list[dict] = []
        self.text = ""
        for path in sorted(directory.glob("*.tf")):
            self.text += path.read_text() + "\n"
            doc = load(path)
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for entry in doc.get(kind, []):
                    for rtype, named in entry.items():
                        for rname, body in named.items():
                            key = (unquote(rtype), unquote(rname))
                            assert key not in target, f"duplicate {kind} {key} in {directory}"
                            target[key] = body
            for kind, target in (
                ("variable", self.variables),
                ("output", self.outputs),
                ("module", self.modules),
            ):
                for entry in doc.get(kind, []):
                    for label, body in entry.items():
                        assert unquote(label) not in target, f"duplicate {kind} {label}"
                        target[unquote(label)] = body
            for entry in doc.get("locals", []):
                for key in entry:
                    if not key.startswith("__"):
                        assert key not in self.locals, f"duplicate local {key}"
                        self.locals[key] = attr(entry, key)
            self.terraform.extend(doc.get("terraform", []))

    def resource(self, rtype: str, name: str) -> dict:
        assert (rtype, name) in self.resources, f"{rtype}.{name} missing in {self.directory}"
        return self.resources[(rtype, name)]

    def datasource(self, rtype: str, name: str) -> dict:
        assert (rtype, name) in self.data, f"data.{rtype}.{name} missing in {self.directory}"
        return self.data[(rtype, name)]

    def resolve(self, value: str) -> str:
        """Substitute ${local.x} where x is a plain string local (e.g. the S3 prefixes)."""

        def sub(match: re.Match[str]) -> str:
            local = self.locals.get(match.group(1))
            if isinstance(local, str) and "${" not in local:
                return local
            return match.group(0)

        return re.sub(r"\$\{local\.([a-z0-9_]+)\}", sub, value)


@cache
def load(path: Path) -> dict:
    with path.open() as handle:
        return hcl2.load(handle)


@cache
def module() -> Config:
    return Config(TF_DIR)


@cache
def examples() -> dict[str, Config]:
    return {d.name: Config(d) for d in EXAMPLE_DIRS}


def example_tasks(name: str = "complete") -> dict[str, Any]:
    """The tasks map an example passes to the module, as a JSON value for -var."""
    (call,) = examples()[name].modules.values()
    return attr(call, "tasks")
