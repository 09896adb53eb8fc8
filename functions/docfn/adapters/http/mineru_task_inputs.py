"""What ``POST /v1/tasks`` takes, as MinerU 4.0.12's task API reads it (``mineru.parser.task_api``):

- ``multipart/form-data``: one or more ``files`` parts and nothing else; options in the query
  (``tier``, ``ocr_mode``, ``page_range``, ``output_formats`` repeated);
- ``application/octet-stream``: the raw file, with ``?filename=`` (required), an optional
  ``sha256sum`` and a ``Content-Length`` (required, and equal to the body's size);
- ``application/json``: MinerU's ``CreateJobRequest`` — ``files`` [{``source``, ``page_range``}],
  ``tier``, ``ocr_mode``, ``output_formats``, ``callback`` {``url``, ``secret``}; options in the
  body only. Sources ``inline`` (base64) and ``url`` (fetched now, under the rules of URL inputs)
  are read; ``file_id`` (MinerU's file store) and ``local`` (a server path) are refused, as docfn
  keeps no file store and reads no server paths.

At most 100 files, each at most ``DOCFN_MAX_UPLOAD_BYTES`` (MinerU's 200 MiB by default).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Annotated, Literal, TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...core.errors import BadInput, DocfnError, PayloadTooLarge
from ...service.task_groups import Callback
from . import mineru_v4 as v4
from .body import read_body
from .callbacks import CallbackSender
from .url_inputs import Fetch

MAX_TASK_FILES = 100
SHA256 = r"^[a-f0-9]{64}$"
Model = TypeVar("Model", bound=BaseModel)


class UnsupportedSource(BadInput):
    code = "unsupported_source"


class LengthRequired(DocfnError):
    status, code = 411, "length_required"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Tier = Literal["flash", "basic", "standard", "advanced"]
OcrMode = Literal["auto", "txt", "ocr"]


class QueryOptions(_Strict):
    """MinerU's ``UploadTaskOptions``: the query of a multipart or raw upload."""

    tier: Tier | None = None
    ocr_mode: OcrMode = "auto"
    page_range: str = ""
    output_formats: list[str] = Field(default_factory=lambda: ["markdown"])
    filename: str | None = Field(default=None, min_length=1)
    sha256sum: str | None = Field(default=None, pattern=SHA256)


class FileIdSource(_Strict):
    type: Literal["file_id"] = "file_id"
    file_id: str


class UrlSource(_Strict):
    type: Literal["url"] = "url"
    url: str


class InlineSource(_Strict):
    type: Literal["inline"] = "inline"
    name: str = Field(min_length=1)
    data: str = Field(min_length=1)


class LocalSource(_Strict):
    type: Literal["local"] = "local"
    path: str = Field(min_length=1)


class FileEntry(_Strict):
    source: Annotated[FileIdSource | UrlSource | InlineSource | LocalSource, Field(discriminator="type")]
    page_range: str | None = None


class CallbackConfig(_Strict):
    url: str
    secret: str | None = None


class CreateTask(_Strict):
    """MinerU's ``CreateJobRequest``."""

    files: list[FileEntry] = Field(min_length=1, max_length=MAX_TASK_FILES)
    tier: Tier | None = None
    ocr_mode: OcrMode = "auto"
    output_formats: list[str] = Field(default_factory=lambda: ["markdown"])
    callback: CallbackConfig | None = None


@dataclass(frozen=True)
class TaskFile:
    name: str
    page_range: str  # as given ("" = every page)
    data: bytes
    content_type: str | None


@dataclass
class Submission:
    """A task request read: its files, MinerU's options, its callback."""

    tier: str | None
    ocr_mode: str
    output_formats: list[str]
    files: list[TaskFile] = field(default_factory=list)
    callback: Callback | None = None


def media_type(request: Request) -> str:
    return (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()


def query_options(request: Request) -> QueryOptions:
    """The options of a multipart or raw upload, from the query (``output_formats`` repeated)."""
    params: dict[str, object] = dict(request.query_params)
    if "output_formats" in params:
        params["output_formats"] = request.query_params.getlist("output_formats")
    options = _validated(QueryOptions, params)
    options.output_formats = v4.output_formats(options.output_formats)
    v4.pages_option(options.page_range)  # refused now (400), not in the job
    return options


def declared_size(request: Request, limit: int) -> int:
    """A raw upload's Content-Length: required (411), at most ``limit`` (413)."""
    header = request.headers.get("content-length")
    if header is None or not header.isdigit():
        raise LengthRequired("Content-Length is required for raw uploads")
    size = int(header)
    if size <= 0 or size > limit:
        raise PayloadTooLarge(f"a raw upload of {size:,} bytes: each file must be 1 to {limit:,} bytes")
    return size


async def read_raw(request: Request, options: QueryOptions, limit: int) -> Submission:
    if options.filename is None:
        raise BadInput("filename is required for raw uploads (?filename=)")
    size = declared_size(request, limit)
    given = await read_body(request, limit)
    if len(given.data) != size:
        raise BadInput("Declared size does not match uploaded bytes")
    submission = Submission(options.tier, options.ocr_mode, options.output_formats)
    submission.files.append(TaskFile(options.filename, options.page_range, given.data, None))
    return submission


async def read_multipart(request: Request, options: QueryOptions, limit: int) -> Submission:
    if options.filename is not None or options.sha256sum is not None:
        raise BadInput("filename and sha256sum are only supported for raw uploads")
    try:
        form = await request.form(max_files=MAX_TASK_FILES, max_fields=0)
    except StarletteHTTPException as exc:  # too many files, a form field: MinerU's 400 too
        raise BadInput(f"Supply one or more files fields and nothing else ({exc.detail})") from None
    parts = form.getlist("files")
    if not parts or any(key != "files" for key in form):
        raise BadInput("Supply one or more files fields (and no other form fields)")
    submission = Submission(options.tier, options.ocr_mode, options.output_formats)
    for part in parts:
        if not isinstance(part, UploadFile) or not part.filename:
            raise BadInput("Every files field must contain a named file")
        if part.size is not None and part.size > limit:
            raise PayloadTooLarge(f"{part.filename} exceeds {limit:,} bytes")
        data = await part.read()
        if not data:
            raise BadInput(f"{part.filename} is empty: empty files are not supported")
        submission.files.append(TaskFile(part.filename, options.page_range, data, part.content_type))
    return submission


async def read_json(request: Request, limit: int, fetch: Fetch, callbacks: CallbackSender) -> Submission:
    if request.query_params:
        raise BadInput("JSON parse options must be supplied in the request body")
    body = _validated(CreateTask, await _json(request, limit))
    formats = v4.output_formats(body.output_formats)
    submission = Submission(body.tier, body.ocr_mode, formats)
    for entry in body.files:
        page_range = entry.page_range or ""
        v4.pages_option(page_range)
        submission.files.append(await _source(entry.source, page_range, fetch))
    if body.callback is not None:
        await run_in_threadpool(callbacks.check, body.callback.url)
        submission.callback = Callback(body.callback.url, body.callback.secret)
    return submission


async def _source(
    source: FileIdSource | UrlSource | InlineSource | LocalSource, page_range: str, fetch: Fetch
) -> TaskFile:
    if isinstance(source, InlineSource):
        try:
            data = base64.b64decode(source.data, validate=True)
        except (binascii.Error, ValueError):
            raise BadInput("inline source data must be valid base64") from None
        return TaskFile(source.name, page_range, data, None)
    if isinstance(source, UrlSource):
        fetched = await run_in_threadpool(fetch, source.url)
        name = source.url.rsplit("/", 1)[-1].split("?")[0] or "unknown"
        return TaskFile(name, page_range, fetched.data, fetched.content_type)
    raise UnsupportedSource(
        f"source type {source.type!r} is not read here: docfn keeps no file store (file_id) and reads no"
        " server paths (local); send the file (multipart files, a raw body) or a url or inline source"
    )


async def _json(request: Request, limit: int) -> object:
    given = await read_body(request, limit)
    try:
        return json.loads(given.data)
    except ValueError:
        raise BadInput("the body is not JSON") from None


def _validated(model: type[Model], data: object) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadInput(f"Invalid request: {where}: {first['msg']}") from None
