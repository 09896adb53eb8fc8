"""The layering of docs/architecture.md, enforced: every import inside ``docfn`` points down (or
stays in its layer), and no two modules import each other, directly or round a loop."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from docfn_testkit.paths import ROOT

PACKAGE = ROOT / "functions" / "docfn"
# Bottom to top; a module may import its own layer and the layers before it, never those after.
LAYERS = ("core", "packs", "tasks", "service", "cloud", "tooling", "adapters")
# Modules outside the layer folders: the package root (its version), the `python -m docfn` entry and
# the client of deployed functions (`docfn.client`, an entry point like the CLI).
OUTSIDE = {"docfn": "core", "docfn.__main__": "adapters", "docfn.client": "adapters"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    """Every docfn module ``path`` imports, at the top or inside functions (lazy imports count)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "docfn")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != "docfn":
                continue
            # `from .pkg import mod` imports a module; `from .mod import name` the module itself.
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _exists(candidate) else target)
    return found


def _exists(module: str) -> bool:
    relative = Path(*module.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


def _layer(module: str) -> str:
    if module in OUTSIDE:
        return OUTSIDE[module]
    return module.split(".")[1]


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        graph[module] = {m for m in _imports(path, module) if m != module}
    return graph


def test_every_module_belongs_to_a_layer() -> None:
    for module in _graph():
        assert _layer(module) in LAYERS, f"{module} is in no layer of {LAYERS}"


def test_imports_point_down() -> None:
    wrong = []
    for module, imported in _graph().items():
        rank = LAYERS.index(_layer(module))
        for target in imported:
            if LAYERS.index(_layer(target)) > rank:
                wrong.append(f"{module} ({_layer(module)}) imports {target} ({_layer(target)})")
    assert not wrong, "imports pointing up:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if target.startswith(module + "."):  # a package importing its own modules is no cycle
                continue
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target] if target in path else [module, target])
            elif state.get(target) is None and target in graph:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_rule_sees_a_violation(tmp_path: Path) -> None:
    """The checker itself: relative and lazy upward imports of a core module are found."""
    probe = tmp_path / "probe.py"
    probe.write_text("from ..adapters import wiring\n\ndef later():\n    from docfn.service import cache\n")
    found = _imports(probe, "docfn.core.probe")
    assert {"docfn.adapters.wiring", "docfn.service.cache"} <= found
    assert LAYERS.index(_layer("docfn.adapters.wiring")) > LAYERS.index(_layer("docfn.core.probe"))


def test_functions_do_not_use_opencv() -> None:
    """OpenCV is 160 MB of an image for a few operations: docfn.core.imaging does them with numpy and
    Pillow (docs/benchmarks/imaging.md). OpenCV stays a dev-only reference for the parity tests."""
    users = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if any(
            (isinstance(n, ast.Import) and any(a.name.split(".")[0] == "cv2" for a in n.names))
            or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "cv2")
            for n in ast.walk(ast.parse(path.read_text()))
        )
    ]
    assert users == []
    runtime = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in runtime if d.lower().startswith("opencv")]
