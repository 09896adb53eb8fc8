"""MinerU's HTTP API on docfn's ``parse``: code written for a MinerU server works unchanged.

- ``POST /file_parse``: MinerU 2.x (``mineru.cli.fast_api``). Form fields ``files`` (one or more),
  ``backend``, ``parse_method``, ``lang_list``, ``formula_enable``, ``table_enable``, ``server_url``,
  ``output_dir``, ``return_md`` (default true), ``return_middle_json``, ``return_model_output``,
  ``return_content_list``, ``return_images`` (default false), ``start_page_id`` (0-based, default 0),
  ``end_page_id`` (inclusive, default 99999), ``response_format_zip``. Answers ``{backend, version,
  results: {<stem>: {md_content, content_list, middle_json, images}}}`` with ``content_list`` and
  ``middle_json`` as JSON text and images as data URLs, as MinerU does; or ``results.zip`` holding
  ``<stem>/<stem>.md``, ``_content_list.json``, ``_middle.json`` and ``images/``. Errors:
  ``{"error": "..."}``.
- ``POST /v1/file_parse``: MinerU 4 (``mineru.parser.task_api``). Multipart ``files`` or an
  ``application/octet-stream`` body with ``?filename=``; query ``response_format`` (json | zip),
  ``page_range`` ("1-5,8", "all"), ``output_formats`` (markdown, middle_json, structured_content,
  zip), ``tier``, ``ocr_mode`` (parse's ``mode``: auto, txt, ocr), ``wait_timeout``. Answers
  MinerU's task result (``task_id``, ``status``, ``files[].content``) or, for zip, ``markdown.md``,
  ``middle_json.json``, ``structured_content.json`` and ``images/``. Errors:
  ``{"error": {type, code, message, param}}``.

The asynchronous task API (``POST /v1/tasks``, …) is ``mineru_tasks``'s. MinerU's engine choices
(``backend``, ``parse_method``, ``lang_list``, ``formula_enable``, ``table_enable``, ``tier``) are
accepted and do not change the pipeline: docfn's parse is one pipeline (layout, OCR, tables).
``structured_content`` is docfn's content list, which follows MinerU's content_list format;
``middle_json`` carries the same blocks per page.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import PurePath
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData, UploadFile

from ... import __version__
from ...core.documents import DecodeLimits, open_document
from ...core.errors import BadInput, BadOptions, DocfnError
from ...service.outcome import Outcome
from . import mineru_v4 as v4
from .body import TaskInput, is_multipart, read_body

Execute = Callable[[str, TaskInput, dict[str, str]], Awaitable[Outcome]]
# The app's request log line and metrics: (task, request, status, outcome, error code).
Observe = Callable[[str, Request, int, Outcome | None, str | None], None]
MAX_FILES = 16
_TRUE = {"true", "1", "yes", "on"}


def add_mineru_routes(
    app: FastAPI, execute: Execute, observe: Observe, limits: DecodeLimits, max_bytes: int
) -> None:
    parse = _Parser(execute, observe, limits, max_bytes)

    @app.post("/file_parse", tags=["MinerU"], summary="MinerU 2.x file_parse on docfn's parse")
    async def file_parse_v2(request: Request) -> Response:
        try:
            return await _file_parse_v2(parse, request)
        except DocfnError as exc:
            observe("parse", request, exc.status, None, exc.code)
            return JSONResponse({"error": exc.message}, status_code=v4.mineru_status(exc))

    @app.post("/v1/file_parse", tags=["MinerU"], summary="MinerU 4 /v1/file_parse on docfn's parse")
    async def file_parse_v4(request: Request) -> Response:
        try:
            return await _file_parse_v4(parse, request)
        except DocfnError as exc:
            observe("parse", request, exc.status, None, exc.code)
            return JSONResponse(v4.error_body(exc), status_code=v4.mineru_status(exc))


class _Parser:
    """Runs docfn's parse for one file of a MinerU request, with MinerU's page selection."""

    def __init__(self, execute: Execute, observe: Observe, limits: DecodeLimits, max_bytes: int) -> None:
        self.execute = execute
        self.observe = observe
        self.limits = limits
        self.max_bytes = max_bytes

    async def __call__(
        self, request: Request, given: TaskInput, pages: str | None, images: bool, mode: str | None = None
    ) -> Outcome:
        options = {"images": "base64" if images else "none"}
        if mode is not None:
            options["mode"] = mode  # MinerU 4's ocr_mode: auto, txt, ocr, as parse's mode
        if pages:
            options["pages"] = pages
        outcome = await self.execute("parse", given, options)
        self.observe("parse", request, 200, outcome, None)  # one log line per parsed file
        return outcome

    def page_count(self, given: TaskInput) -> int:
        document = open_document(given.data, given.content_type, self.limits, self.max_bytes)
        try:
            return document.page_count
        finally:
            document.close()


# -- MinerU 2.x ----------------------------------------------------------------------------------


async def _file_parse_v2(parse: _Parser, request: Request) -> Response:
    if not is_multipart(request):
        raise BadInput("POST /file_parse takes a multipart form with one or more 'files' parts")
    form = await request.form(max_files=MAX_FILES, max_fields=64)
    files = _uploads(form)
    backend = _text(form, "backend", "pipeline")
    want = {
        name: _flag(form, name, default)
        for name, default in (
            ("return_md", True),
            ("return_middle_json", False),
            ("return_content_list", False),
            ("return_images", False),
            ("response_format_zip", False),
        )
    }
    start = _number(form, "start_page_id", 0)
    end = _number(form, "end_page_id", 99999)
    results: dict[str, dict[str, Any]] = {}
    for upload in files:
        given = TaskInput(await upload.read(), upload.content_type, upload.filename)
        pages = None
        if start > 0 or end < 99999:
            last = min(end, parse.page_count(given) - 1)
            if start > last:
                raise BadOptions(f"start_page_id {start} is past the document's last page ({last})")
            pages = f"{start + 1}-{last + 1}"
        images = want["return_images"] or want["response_format_zip"]
        outcome = await parse(request, given, pages, images)
        results[_stem(upload.filename)] = _v2_result(outcome, want)
    if want["response_format_zip"]:
        return _zip_response(_v2_zip(results), "results.zip")
    return JSONResponse({"backend": backend, "version": __version__, "results": results})


def _v2_result(outcome: Outcome, want: dict[str, bool]) -> dict[str, Any]:
    result = outcome.result
    data: dict[str, Any] = {}
    if want["return_md"] or want["response_format_zip"]:
        data["md_content"] = result["markdown"]
    if want["return_middle_json"] or want["response_format_zip"]:
        data["middle_json"] = json.dumps(v4.middle_json(result), ensure_ascii=False)
    if want["return_content_list"] or want["response_format_zip"]:
        data["content_list"] = json.dumps(result["content_list"], ensure_ascii=False)
    if want["return_images"] or want["response_format_zip"]:
        data["images"] = {
            PurePath(path).name: f"data:image/png;base64,{encoded}"
            for path, encoded in (result.get("images") or {}).items()
        }
    return data


def _v2_zip(results: dict[str, dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for stem, data in results.items():
            safe = _safe_name(stem)
            archive.writestr(f"{safe}/{safe}.md", data["md_content"])
            archive.writestr(f"{safe}/{safe}_middle.json", data["middle_json"])
            archive.writestr(f"{safe}/{safe}_content_list.json", data["content_list"])
            for name, url in data["images"].items():
                archive.writestr(f"{safe}/images/{name}", base64.b64decode(url.split(",", 1)[1]))
    return buffer.getvalue()


# -- MinerU 4 ------------------------------------------------------------------------------------


async def _file_parse_v4(parse: _Parser, request: Request) -> Response:
    query = request.query_params
    response_format = query.get("response_format", "json")
    if response_format not in ("json", "zip"):
        raise BadOptions("response_format must be json or zip")
    formats = v4.output_formats(query.getlist("output_formats"))
    if response_format == "zip" and "zip" not in formats:
        formats.append("zip")
    page_range = v4.pages_option(query.get("page_range", ""))
    ocr_mode = query.get("ocr_mode", "auto")
    if ocr_mode not in ("auto", "txt", "ocr"):
        raise BadOptions(f"ocr_mode must be auto, txt or ocr, not {ocr_mode!r}")
    inputs = await _v4_inputs(request, parse.max_bytes)
    created = time.time()
    files = []
    archives: list[tuple[int, bytes]] = []
    for index, given in enumerate(inputs, start=1):
        started = time.perf_counter()
        outcome = await parse(request, given, page_range, "zip" in formats, ocr_mode)
        files.append(_v4_file(given, outcome, formats, started))
        if "zip" in formats:
            archives.append((index, v4.result_zip(outcome.result)))
    task_id = f"task_{uuid.uuid4().hex}"
    if response_format == "zip":
        body = archives[0][1] if len(archives) == 1 else v4.combined_zip(archives)
        return _zip_response(body, f"{task_id}.zip", {"X-MinerU-Task-Id": task_id})
    return JSONResponse(
        {
            "task_id": task_id,
            "status": "completed",
            "created_at": v4.iso(created),
            "started_at": v4.iso(created),
            "finished_at": v4.iso(time.time()),
            "tier": query.get("tier") or "basic",
            "output_formats": formats,
            "access_level": "anonymous",
            "progress": {"completed": len(files), "failed": 0, "total": len(files)},
            "files": files,
            # Answered synchronously: no task record to poll (POST /v1/tasks makes one).
            "links": None,
            "status_url": None,
            "result_url": None,
        }
    )


async def _v4_inputs(request: Request, max_bytes: int) -> list[TaskInput]:
    media_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        form = await request.form(max_files=MAX_FILES, max_fields=0)
        if any(key != "files" for key in form):
            raise BadInput("Supply one or more files fields")
        return [TaskInput(await f.read(), f.content_type, f.filename) for f in _uploads(form)]
    if media_type == "application/octet-stream":
        filename = request.query_params.get("filename")
        if not filename:
            raise BadInput("filename is required for raw uploads")
        given = await read_body(request, max_bytes)
        return [TaskInput(given.data, None, filename)]
    raise BadInput("Use multipart/form-data (files) or application/octet-stream (?filename=)")


def _v4_file(given: TaskInput, outcome: Outcome, formats: list[str], started: float) -> dict[str, Any]:
    result = outcome.result
    duration = round((time.perf_counter() - started) * 1000)
    return {
        "file_id": None,
        "name": given.filename or "document",
        "page_range": v4.parsed_pages(result),
        "status": "completed",
        "parse": v4.parse_info(result.get("model"), duration),
        "output_files": None,
        "error": None,
        "content": v4.file_content(result, formats),
    }


# -- shared --------------------------------------------------------------------------------------


def _uploads(form: FormData) -> list[UploadFile]:
    files = [part for part in form.getlist("files") if isinstance(part, UploadFile)]
    if not files:
        raise BadInput("the form has no 'files' part")
    return files


def _text(form: FormData, name: str, default: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) and value else default


def _flag(form: FormData, name: str, default: bool) -> bool:
    value = form.get(name)
    return value.strip().lower() in _TRUE if isinstance(value, str) else default


def _number(form: FormData, name: str, default: int) -> int:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadOptions(f"{name} must be an integer; got {value!r}") from None
    if number < 0:
        raise BadOptions(f"{name} must be 0 or more")
    return number


def _stem(filename: str | None) -> str:
    return PurePath(filename or "document").stem or "document"


def _safe_name(name: str) -> str:
    """MinerU's sanitize_filename: no path separators or traversal, word characters kept."""
    cleaned = re.sub(r"[/\\.]{2,}|[/\\]", "", name)
    cleaned = re.sub(r"[^\w.-]", "_", cleaned)
    return ("_" + cleaned[1:] if cleaned.startswith(".") else cleaned) or "unnamed"


def _zip_response(body: bytes, filename: str, headers: dict[str, str] | None = None) -> Response:
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(body, media_type="application/zip", headers={**disposition, **(headers or {})})
