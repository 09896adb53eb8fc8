"""MinerU 4's response shapes (``mineru.parser.task_api`` and ``api_server``, 4.0.12), shared by
``POST /v1/file_parse`` (``mineru_api``) and the task API (``mineru_tasks``): a task's status payload,
a file's entry and its inline content, the zip archives, page ranges and errors.

A task payload is MinerU's ``TaskStatusResponse``: ``task_id``, ``status`` (queued, running,
completed, partial, failed, canceled), ISO-8601 UTC ``created_at`` / ``started_at`` /
``finished_at``, ``tier``, ``output_formats``, ``access_level``, ``progress`` {completed, failed,
total}, ``files`` [{file_id, name, page_range, status, parse, output_files, error}], ``links``
{self, cancel}, ``status_url``, ``result_url``; nothing else (MinerU's models forbid extra fields).
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
import zipfile
from typing import Any

from ... import __version__
from ...core.errors import BadOptions, DocfnError
from ...service.storage import JobStatus
from ...service.task_groups import GroupView

OUTPUT_FORMATS = ("markdown", "middle_json", "structured_content", "zip")
INLINE_FORMATS = ("markdown", "middle_json", "structured_content")
DEFAULT_TIER = "standard"  # MinerU's server default
# A job's state as MinerU names a file's (canceled files read failed, as MinerU's do).
_FILE_STATUS = {"queued": "queued", "running": "running", "succeeded": "completed", "failed": "failed"}


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def pages_option(page_range: str | None) -> str | None:
    """MinerU's 1-based page ranges as docfn's ``pages`` option; "all" or empty is every page.
    ``rN`` (counted from the end) is not read: 400 saying so."""
    value = (page_range or "").strip().replace(" ", "")
    if value in ("", "all"):
        return None
    if not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", value):
        raise BadOptions(f"page_range {page_range!r}: use 1-based pages and ranges such as 1-5,8 (or all)")
    return value


def output_formats(given: list[str]) -> list[str]:
    formats = given or ["markdown"]
    unknown = [fmt for fmt in formats if fmt not in OUTPUT_FORMATS]
    if unknown:
        raise BadOptions(f"unsupported output format(s) {unknown}; supported: {list(OUTPUT_FORMATS)}")
    return formats


def error_body(exc: DocfnError, param: str | None = None) -> dict[str, Any]:
    """MinerU's error: ``{"error": {type, code, message, param}}``."""
    kind = "invalid_request_error" if exc.status < 500 else "api_error"
    return {"error": {"type": kind, "code": exc.code, "message": exc.message, "param": param}}


def mineru_status(exc: DocfnError) -> int:
    """MinerU answers 400 for every invalid request; docfn's 422 (bad options) is one of those."""
    return 400 if exc.status == 422 else exc.status


def compact(pages: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3,5"``, as MinerU writes a file's page range."""
    runs: list[list[int]] = []
    for page in pages:
        if runs and page == runs[-1][1] + 1:
            runs[-1][1] = page
        else:
            runs.append([page, page])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def parsed_pages(result: dict[str, Any]) -> str:
    return compact([page["page_idx"] + 1 for page in result["pages"]])


def middle_json(result: dict[str, Any]) -> dict[str, Any]:
    """MinerU's middle JSON outline: per page its size and blocks (docfn's content-list blocks)."""
    pages = []
    for page in result["pages"]:
        blocks = [b for b in result["content_list"] if b.get("page_idx") == page["page_idx"]]
        pages.append(
            {
                "page_idx": page["page_idx"],
                "page_size": [page["width"], page["height"]],
                "para_blocks": blocks,
            }
        )
    return {"pdf_info": pages, "_backend": "docfn", "_version_name": __version__}


def file_content(result: dict[str, Any], formats: list[str]) -> dict[str, Any]:
    """A parsed file's inline content in the formats asked for."""
    content: dict[str, Any] = {}
    if "markdown" in formats:
        content["markdown"] = result["markdown"]
    if "middle_json" in formats:
        content["middle_json"] = middle_json(result)
    if "structured_content" in formats:
        content["structured_content"] = result["content_list"]
    return content


def parse_info(model: str | None, duration_ms: int | None) -> dict[str, Any]:
    return {"model_used": model, "duration_ms": duration_ms, "parser_version": f"docfn-{__version__}"}


def result_zip(result: dict[str, Any]) -> bytes:
    """One file's archive: ``markdown.md``, ``middle_json.json``, ``structured_content.json``, images."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("markdown.md", result["markdown"])
        archive.writestr("middle_json.json", json.dumps(middle_json(result), ensure_ascii=False, indent=2))
        archive.writestr("structured_content.json", json.dumps(result["content_list"], ensure_ascii=False))
        for path, encoded in (result.get("images") or {}).items():
            archive.writestr(path, base64.b64decode(encoded))
    return buffer.getvalue()


def combined_zip(archives: list[tuple[int, bytes]], manifest: dict[str, Any] | None = None) -> bytes:
    """Several files: each one's archive under ``0001/``, ``0002/``, … (its 1-based input order),
    and the task's payload as ``manifest.json`` when given (MinerU's task result does so)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        if manifest is not None:
            target.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False))
        for index, data in archives:
            with zipfile.ZipFile(io.BytesIO(data)) as source:
                for info in source.infolist():
                    target.writestr(f"{index:04d}/{info.filename}", source.read(info))
    return buffer.getvalue()


# -- a task group in MinerU's shape --------------------------------------------------------------


def task_payload(view: GroupView) -> dict[str, Any]:
    """MinerU's ``TaskStatusResponse`` for a docfn task group."""
    record = view.record
    base = f"/v1/tasks/{record.task_id}"
    files = [
        _file_entry(file.name, file.page_range, job)
        for file, job in zip(record.files, view.jobs, strict=True)
    ]
    completed = sum(1 for job in view.jobs if job.state == "succeeded")
    failed = sum(1 for job in view.jobs if job.state in ("failed", "canceled"))
    return {
        "task_id": record.task_id,
        "status": view.state,
        "created_at": iso(record.created_at),
        "started_at": iso(view.started_at),
        "finished_at": iso(view.finished_at),
        "tier": record.meta.get("tier") or DEFAULT_TIER,
        "output_formats": record.meta.get("output_formats") or ["markdown"],
        "access_level": "anonymous",
        "progress": {"completed": completed, "failed": failed, "total": len(files)},
        "files": files,
        "links": {"self": base, "cancel": base},
        "status_url": base,
        "result_url": f"{base}/result",
    }


def _file_entry(name: str, page_range: str, job: JobStatus) -> dict[str, Any]:
    status = _FILE_STATUS.get(job.state, "failed")
    error = None
    if job.state == "failed":
        detail = job.error or {}
        error = {
            "type": "api_error",
            "code": detail.get("code", "internal_error"),
            "message": detail.get("message", "the file failed"),
            "param": None,
        }
    elif job.state == "canceled":
        error = {"type": "invalid_request_error", "code": "canceled", "message": "canceled", "param": None}
    parse = None
    if job.state == "succeeded":
        duration = None if job.started_at is None else round((job.updated_at - job.started_at) * 1000)
        parse = parse_info(None, duration)
    return {
        "file_id": None,  # docfn keeps no file store to name the input by
        "name": name,
        "page_range": page_range,
        "status": status,
        "parse": parse,
        "output_files": None,  # inline: GET .../result carries the content
        "error": error,
    }
