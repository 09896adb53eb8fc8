"""Render knative/ kustomizations: with kustomize when it is installed, else with a small subset.

`render()` uses `kustomize build` or `kubectl kustomize` when either is on PATH. Without
them it falls back to `render_lite()`, which implements only what knative/ uses:

- `resources`: files (multi-document YAML) and directories holding a kustomization.yaml;
- `patches`: from `path`, optionally with a `target` (group, version, kind, name as a
  regular expression, namespace). A patch file holding a list is a JSON6902 patch (add,
  replace, remove); otherwise it is a strategic-merge patch, applied as a JSON merge patch
  (maps merge, `null` deletes). Those agree as long as a merge patch on a built-in kind
  holds no list, which `render_lite` enforces; use JSON6902 to change lists;
- `images`: name -> newName / newTag / digest on containers and initContainers.

Anything else in a kustomization (namePrefix, namespace, labels, generators, components,
replacements, ...) makes `render_lite` fail loudly: keep the manifests that plain, or
extend this file. A test compares `render_lite` with real kustomize whenever both exist.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "patches", "images"}
BUILTIN_GROUPS = {
    "",
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
}
IMAGE_PATHS = (
    ("spec", "containers"),
    ("spec", "initContainers"),
    ("spec", "template", "spec", "containers"),
    ("spec", "template", "spec", "initContainers"),
    ("spec", "jobTemplate", "spec", "template", "spec", "containers"),
    ("spec", "jobTemplate", "spec", "template", "spec", "initContainers"),
)


def kustomize_command() -> list[str] | None:
    """The command that builds a kustomization on this machine, or None."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def render_kustomize(kdir: Path) -> list[dict[str, Any]]:
    cmd = kustomize_command()
    if cmd is None:
        raise RuntimeError("neither kustomize nor kubectl is installed")
    out = subprocess.run([*cmd, str(kdir)], check=True, capture_output=True, text=True, timeout=120)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def render(kdir: Path) -> list[dict[str, Any]]:
    """Real kustomize output when available, else the subset renderer's."""
    return render_kustomize(kdir) if kustomize_command() else render_lite(kdir)


def group_of(doc: dict[str, Any]) -> str:
    api = doc.get("apiVersion", "")
    return api.split("/")[0] if "/" in api else ""


def render_lite(kdir: Path) -> list[dict[str, Any]]:
    kdir = Path(kdir)
    k = yaml.safe_load((kdir / "kustomization.yaml").read_text())
    unsupported = set(k) - SUPPORTED_FIELDS
    if unsupported:
        raise NotImplementedError(f"{kdir}: kustomize_lite does not implement {sorted(unsupported)}")
    docs: list[dict[str, Any]] = []
    for res in k.get("resources", []):
        path = kdir / res
        if path.is_dir():
            docs.extend(render_lite(path))
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for patch in k.get("patches", []):
        _apply_patch(kdir, patch, docs)
    for image in k.get("images", []):
        _apply_image(image, docs)
    return docs


def _matches(doc: dict[str, Any], target: dict[str, Any]) -> bool:
    meta = doc.get("metadata", {})
    version = doc.get("apiVersion", "").split("/")[-1]
    checks = (
        ("group", group_of(doc)),
        ("version", version),
        ("kind", doc.get("kind")),
        ("namespace", meta.get("namespace")),
    )
    if any(key in target and target[key] != value for key, value in checks):
        return False
    return "name" not in target or re.fullmatch(target["name"], meta.get("name", "")) is not None


def _apply_patch(kdir: Path, patch: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    if set(patch) - {"path", "target"}:
        raise NotImplementedError(f"patch fields {sorted(set(patch) - {'path', 'target'})}")
    body = yaml.safe_load((kdir / patch["path"]).read_text())
    target = patch.get("target")
    if target is None:
        if isinstance(body, list):
            raise ValueError(f"{patch['path']}: a JSON6902 patch needs a target")
        meta = body["metadata"]
        target = {"kind": body["kind"], "name": re.escape(meta["name"])}
        if "namespace" in meta:
            target["namespace"] = meta["namespace"]
    matched = [d for d in docs if _matches(d, target)]
    if not matched:
        raise ValueError(f"{kdir / patch['path']}: no resource matches {target}")
    for doc in matched:
        if isinstance(body, list):
            for op in body:
                _json6902(doc, op)
        else:
            if group_of(doc) in BUILTIN_GROUPS and _has_list(body):
                raise NotImplementedError(
                    f"{patch['path']}: lists in a strategic-merge patch of a built-in kind; use JSON6902"
                )
            merged = _merge(
                doc, {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata")}
            )
            meta_patch = {k: v for k, v in body.get("metadata", {}).items() if k not in ("name", "namespace")}
            merged["metadata"] = _merge(doc["metadata"], meta_patch)
            doc.clear()
            doc.update(merged)


def _has_list(value: Any) -> bool:
    if isinstance(value, list):
        return True
    return isinstance(value, dict) and any(_has_list(v) for v in value.values())


def _merge(base: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def _json6902(doc: dict[str, Any], op: dict[str, Any]) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    parent: Any = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    kind = op["op"]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if kind == "add":
            parent.insert(index, copy.deepcopy(op["value"]))
        elif kind == "replace":
            parent[index] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del parent[index]
        else:
            raise NotImplementedError(f"JSON6902 op {kind}")
    elif kind in ("add", "replace"):
        if kind == "replace" and last not in parent:
            raise KeyError(f"replace of missing {op['path']}")
        parent[last] = copy.deepcopy(op["value"])
    elif kind == "remove":
        del parent[last]
    else:
        raise NotImplementedError(f"JSON6902 op {kind}")


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """'repo/name:tag@sha256:...' -> (name, tag, digest)."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    name, tag = image, None
    if ":" in image.rsplit("/", 1)[-1]:
        name, tag = image.rsplit(":", 1)
    return name, tag, digest


def _apply_image(rule: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        for path in IMAGE_PATHS:
            node: Any = doc
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            for container in node or []:
                name, tag, digest = split_image(container.get("image", ""))
                if name != rule["name"]:
                    continue
                name = rule.get("newName", name)
                if "digest" in rule:
                    container["image"] = f"{name}@{rule['digest']}"
                    continue
                tag = rule.get("newTag", tag)
                container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
