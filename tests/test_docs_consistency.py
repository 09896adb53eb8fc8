"""The docs a user acts on agree with the code and the deployments (issue: a fresh clone is the whole
project).

Everything is read from its source, never copied here: the tasks from the registry
(`docfn.tasks.registry`), Terraform's default task set and environment from the .tf files (python-hcl2),
Knative's from the overlays as `kubectl apply -k` renders them (`kubectl kustomize`), the settings
from `docfn.core.settings.Settings`. Checked against them:

- every list of the tasks in README.md, infra/terraform/README.md and knative/README.md (and the
  image loops of the latter two), and every count of tasks, functions or images in the deployment
  docs and configuration;
- the README's configuration table documents exactly the `Settings` fields (as `DOCFN_<FIELD>`),
  each once: the table is written by hand, this test keeps it complete and free of stale names;
- every `DOCFN_*` variable Terraform or Knative sets is a setting, and every one a doc names is a
  setting or one of the few read outside Settings (`NOT_SETTINGS`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

from docfn.core.settings import ALL_TASKS, NOT_SETTINGS, setting_variables
from docfn.tasks.registry import implemented_tasks
from docfn_testkit.kustomize import kustomize_build
from docfn_testkit.paths import ROOT

README = ROOT / "README.md"
TF_DIR = ROOT / "infra" / "terraform"
TF_README = TF_DIR / "README.md"
TF_EXAMPLE = TF_DIR / "examples" / "complete" / "main.tf"
KNATIVE = ROOT / "knative"
KNATIVE_README = KNATIVE / "README.md"
OVERLAYS = sorted(p for p in (KNATIVE / "overlays").iterdir() if (p / "kustomization.yaml").is_file())

# The registry's tasks: what has code. Everything below must say exactly these.
TASKS = frozenset(implemented_tasks())
# Where the docs list the tasks: (file, text that starts the list, text that ends it).
TASK_LISTS = (
    (README, "One HTTPS function per task", "on AWS Lambda"),
    (README, "Terraform and Knative deploy every task by default", "."),
    (TF_README, "Each implemented task (", ")"),
    (KNATIVE_README, "Every implemented task (", ")"),
)
NUMBERS = dict(
    zip(
        ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"),
        range(1, 13),
        strict=True,
    )
)
# "six tasks", "8 images", "all four functions": counts of what is deployed, one per task.
COUNT = re.compile(
    r"\b(" + "|".join(NUMBERS) + r"|\d+)\s+(?:implemented\s+|deployed\s+)?(?:tasks|functions|images)\b",
    re.I,
)
DEPLOY_FILES = (
    README,
    TF_README,
    KNATIVE_README,
    *sorted(TF_DIR.rglob("*.tf")),
    *sorted(KNATIVE.rglob("*.yaml")),
)
DOCS = (README, TF_README, KNATIVE_README, *sorted((ROOT / "docs").glob("*.md")))
# A variable name in prose; `DOCFN_<ROLE>_MODEL_URI` and `DOCFN_*` are patterns, not names.
NAMED = re.compile(r"\bDOCFN_[A-Z0-9_]*[A-Z0-9]\b(?![<*])")


# --------------------------------------------------------------------------- Terraform


@cache
def _hcl(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return hcl2.load(handle)


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _attr(body: dict[str, Any], name: str) -> Any:
    """An attribute's value: python-hcl2 < 5 (and checkov's fork) wraps each in a one-element list."""
    value = next(v for k, v in body.items() if _unquote(k) == name)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _labelled(path: Path, kind: str, label: str) -> dict[str, Any]:
    for block in _hcl(path).get(kind, []):
        for name, body in block.items():
            if _unquote(name) == label:
                return body
    raise AssertionError(f"no {kind} {label!r} in {path}")


def _keys(value: dict[str, Any]) -> set[str]:
    return {_unquote(k) for k in value if not k.startswith("__")}


def terraform_tasks() -> set[str]:
    """The tasks `variable "tasks"` deploys by default."""
    return _keys(_attr(_labelled(TF_DIR / "variables.tf", "variable", "tasks"), "default"))


def terraform_example_tasks() -> set[str]:
    return _keys(_attr(_labelled(TF_EXAMPLE, "module", "docfn"), "tasks"))


def _strings(value: Any, skip: tuple[str, ...] = ()) -> Iterator[str]:
    """Every key and string in a parsed document, but what is under the keys in ``skip``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if _unquote(key) not in skip:
                yield _unquote(key)
                yield from _strings(item, skip)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, skip)
    elif isinstance(value, str):
        yield value


def terraform_variables() -> dict[str, set[str]]:
    """Every DOCFN_* variable the .tf files set (map keys, in literal maps and in expressions such as
    main.tf's function_environment), with the files that set it. `DOCFN_${upper(role)}_MODEL_URI`
    stands for each role the configuration names in a `role_packs` / `default_role_packs` map."""
    set_by: dict[str, set[str]] = {}
    # A key in an expression (python-hcl2 prints object keys as `'KEY': ...` or `KEY = ...`).
    key = re.compile(r"\b(DOCFN_[A-Z0-9_]+)['\"]?\s*(?::|=(?![=>]))")
    roles: set[str] = set()
    templated: set[str] = set()  # the files that name secondary packs by that template
    for path in sorted(TF_DIR.rglob("*.tf")):
        where = str(path.relative_to(ROOT))
        for text in _strings(_hcl(path), skip=("description", "error_message")):  # not prose
            names = [text] if re.fullmatch(r"DOCFN_[A-Z0-9_]+", text) else key.findall(text)
            for name in names:
                set_by.setdefault(name, set()).add(where)
            if "DOCFN_${upper(role)}_MODEL_URI" in text:
                templated.add(where)
        roles.update(_role_pack_keys(_hcl(path)))
    assert templated, "main.tf/packs.tf no longer name the secondary packs DOCFN_${upper(role)}_MODEL_URI"
    assert roles, "no role_packs found in the .tf files"
    for role in roles:
        set_by.setdefault(f"DOCFN_{role.upper()}_MODEL_URI", set()).update(templated)
    return set_by


def _role_pack_keys(value: Any) -> Iterator[str]:
    """The roles of every literal role_packs / default_role_packs map."""
    if isinstance(value, dict):
        for key, item in value.items():
            if _unquote(key) in ("role_packs", "default_role_packs"):
                maps = item if isinstance(item, list) else [item]
                for entry in maps:
                    if isinstance(entry, dict):
                        nested = [v for v in entry.values() if isinstance(v, dict)]
                        # default_role_packs is task => {role => pack}; role_packs is role => pack.
                        for roles in nested or [entry]:
                            yield from _keys(roles)
            yield from _role_pack_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _role_pack_keys(item)


# --------------------------------------------------------------------------- Knative


@cache
def rendered(overlay: Path) -> tuple[dict[str, Any], ...]:
    return tuple(kustomize_build(overlay))


def knative_tasks(overlay: Path) -> set[str]:
    """The task each Knative Service serves: its container's DOCFN_TASKS."""
    tasks = set()
    for doc in rendered(overlay):
        if doc["kind"] == "Service" and doc["apiVersion"].startswith("serving.knative.dev/"):
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            tasks.add(env["DOCFN_TASKS"])
    return tasks


def knative_variables(overlay: Path) -> set[str]:
    """Every DOCFN_* variable the overlay sets: env names, ConfigMap and Secret keys, ExternalSecret
    keys (any string of the rendered objects that is exactly such a name)."""
    return {s for s in _strings(list(rendered(overlay))) if re.fullmatch(r"DOCFN_[A-Z0-9_]+", s)}


# --------------------------------------------------------------------------- README


def _section(path: Path, title: str) -> str:
    text = path.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def listed_tasks(path: Path, start: str, end: str) -> set[str]:
    text = " ".join(path.read_text().split())  # lists wrap across lines
    assert start in text, f"{path.name}: the task list starting {start!r} is gone; update TASK_LISTS"
    begin = text.index(start) + len(start)
    return set(re.findall(r"`([a-z]+)`", text[begin : text.index(end, begin)]))


def documented_settings() -> list[str]:
    """The DOCFN_* names in the first column of the README's configuration table, in order."""
    names = []
    for line in _section(README, "Configuration").splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            names.extend(re.findall(r"`(DOCFN_[A-Z0-9_]+)`", cells[1]))
    return names


# --------------------------------------------------------------------------- tests


def test_the_app_accepts_exactly_the_implemented_tasks() -> None:
    assert set(ALL_TASKS) == TASKS


def test_terraform_deploys_every_task_by_default() -> None:
    assert terraform_tasks() == TASKS
    assert terraform_example_tasks() == TASKS, TF_EXAMPLE


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_knative_deploys_every_task(overlay: Path) -> None:
    assert knative_tasks(overlay) == TASKS


@pytest.mark.parametrize(
    ("path", "start", "end"), TASK_LISTS, ids=[f"{p.name}:{s[:20]}" for p, s, _ in TASK_LISTS]
)
def test_the_docs_list_the_deployed_tasks(path: Path, start: str, end: str) -> None:
    assert listed_tasks(path, start, end) == TASKS


@pytest.mark.parametrize("path", (TF_README, KNATIVE_README), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_image_loops_build_every_task(path: Path) -> None:
    loops = re.findall(r"^for \w+ in ([^;]+); do", path.read_text(), re.M)
    assert loops
    for words in loops:
        assert set(words.split()) == TASKS, words


def test_counts_of_tasks_functions_and_images_are_the_task_count() -> None:
    wrong = []
    for path in DEPLOY_FILES:
        for number, lineno in (
            (m.group(1), text[: m.start()].count("\n") + 1)
            for text in [path.read_text()]
            for m in COUNT.finditer(text)
        ):
            count = int(number) if number.isdigit() else NUMBERS[number.lower()]
            if count != len(TASKS):
                wrong.append(f"{path.relative_to(ROOT)}:{lineno}: {number}")
    assert not wrong, f"{len(TASKS)} tasks are deployed; these say otherwise: {wrong}"


def test_terraform_readme_states_the_default_reserved_concurrency() -> None:
    body = _labelled(TF_DIR / "variables.tf", "variable", "tasks")
    # The optional() default in the object type: `reserved_concurrency = optional(number, 10)`.
    optional = r"reserved_concurrency\W*[:=]\W*optional\(number,\s*(\d+)\)"
    (per_task,) = re.findall(optional, str(_attr(body, "type")))
    defaults = _attr(body, "default")
    total = sum(int(entry.get("reserved_concurrency", per_task)) for entry in defaults.values())
    text = " ".join(TF_README.read_text().split())
    stated = re.search(r"which is (\d+) with the defaults \((\d+) tasks x (\d+)(, but ([^)]*))?\)", text)
    assert stated, "the Apply section no longer states the tasks' reserved concurrency"
    assert stated.groups()[:3] == (str(total), str(len(defaults)), per_task)
    # Tasks with their own reserved concurrency are named with it ("formula and chart 4 each").
    own = {
        task: entry["reserved_concurrency"]
        for task, entry in defaults.items()
        if "reserved_concurrency" in entry
    }
    for task, value in own.items():
        if str(value) != per_task:
            assert task in (stated.group(5) or "") and str(value) in stated.group(5), (task, value)


def test_the_configuration_table_documents_every_setting_once() -> None:
    documented = documented_settings()
    settings = setting_variables()
    assert not sorted(settings - set(documented)), "settings missing from README's table"
    assert not sorted(set(documented) - settings), "README's table documents what is no setting"
    assert len(documented) == len(set(documented)), "a setting documented twice"


def test_what_terraform_sets_is_settings() -> None:
    # The functions' environment is main.tf's function_environment, whose keys are read above.
    lambda_env = str(_hcl(TF_DIR / "lambda.tf"))
    assert "local.function_environment[each.key]" in lambda_env
    set_by = terraform_variables()
    assert {"DOCFN_TASKS", "DOCFN_LOG_LEVEL", "DOCFN_RESULT_TTL_SECONDS"} <= set(set_by)
    unknown = {name: sorted(where) for name, where in set_by.items() if name not in setting_variables()}
    assert not unknown, f"Terraform sets variables no setting reads: {unknown}"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_what_knative_sets_is_settings(overlay: Path) -> None:
    variables = knative_variables(overlay)
    assert {"DOCFN_TASKS", "DOCFN_MODEL_URI", "DOCFN_LOG_LEVEL"} <= variables
    assert not sorted(variables - setting_variables()), "Knative sets variables no setting reads"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_variable_a_doc_names_exists(path: Path) -> None:
    named = set(NAMED.findall(path.read_text()))
    assert not sorted(named - setting_variables() - NOT_SETTINGS)
