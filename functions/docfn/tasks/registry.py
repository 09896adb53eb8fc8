"""Task name -> implementation. Imports are lazy so a function only imports the task it serves."""

from __future__ import annotations

import importlib

from .base import Task

_TASKS: dict[str, str] = {
    "ocr": "docfn.tasks.ocr.task:OcrTask",
    "layout": "docfn.tasks.layout.task:LayoutTask",
    "table": "docfn.tasks.table.task:TableTask",
    "parse": "docfn.tasks.parse.task:ParseTask",
}


def implemented_tasks() -> list[str]:
    return list(_TASKS)


def register(name: str, target: str) -> None:
    """Register ``module:Class`` for task ``name`` (later tasks plug in here)."""
    _TASKS[name] = target


def task_class(name: str) -> type[Task]:
    module_name, _, class_name = _TASKS[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
