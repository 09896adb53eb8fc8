"""Task name -> implementation. Imports are lazy so a function only imports the task it serves;
a task's options model lives in its own light module so any function can validate them."""

from __future__ import annotations

import importlib

from ..packs.refs import OWN_PACK, pack_ref_for, setting_for
from .contract import Task, TaskOptions, TextTask

_TASKS: dict[str, str] = {
    "ocr": "docfn.tasks.ocr.task:OcrTask",
    "layout": "docfn.tasks.layout.task:LayoutTask",
    "table": "docfn.tasks.table.task:TableTask",
    "parse": "docfn.tasks.parse.task:ParseTask",
    "vlm": "docfn.tasks.vlm.task:VlmTask",
    "formula": "docfn.tasks.formula.task:FormulaTask",
    "chart": "docfn.tasks.chart.task:ChartTask",
    "summarize": "docfn.tasks.summarize.task:SummarizeTask",
}
_OPTIONS: dict[str, str] = {
    "ocr": "docfn.tasks.ocr.options:OcrOptions",
    "layout": "docfn.tasks.layout.options:LayoutOptions",
    "table": "docfn.tasks.table.options:TableOptions",
    "parse": "docfn.tasks.parse.options:ParseOptions",
    "vlm": "docfn.tasks.vlm.options:VlmOptions",
    "formula": "docfn.tasks.formula.options:FormulaOptions",
    "chart": "docfn.tasks.chart.options:ChartOptions",
    "summarize": "docfn.tasks.summarize.options:SummarizeOptions",
}


def implemented_tasks() -> list[str]:
    return list(_TASKS)


def _load(target: str) -> type:
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def task_class(name: str) -> type[Task]:
    return _load(_TASKS[name])


def options_model(name: str) -> type[TaskOptions]:
    """The options model of task ``name`` without importing its inference code."""
    return _load(_OPTIONS[name])


def default_pack_settings(name: str) -> dict[str, str]:
    """What a deployment of task ``name`` sets: each pack variable and the ``NAME/VERSION`` of the
    default pack it names under ``s3://BUCKET/models/`` (a deployed function never builds packs)."""
    cls = task_class(name)
    packs = {setting_for(role): pack_ref_for(name, role, None) for role in cls.pack_roles}
    if issubclass(cls, TextTask):  # documents go through the upstream task's packs, by role
        for role in task_class(cls.upstream).pack_roles:
            setting = setting_for(cls.upstream_own_role if role == OWN_PACK else role)
            packs[setting] = pack_ref_for(cls.upstream, role, None)
    return {setting: f"{ref.name}/{ref.version}" for setting, ref in packs.items()}
