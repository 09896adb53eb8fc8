"""Reading the input of a task request: a raw body, or the file part of a multipart form.

Callers arrive with the field names their own clients use: ``file`` (curl, docfn), ``image`` (the
reference deployment's client) and ``files`` (MinerU-style clients). A free-text ``instruction``
form field is read too: the VLM's prompt where a VLM answers the request, and the response says
whether it was applied, and why not (``docfn.tasks.instruction``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from ...core.errors import BadInput, ClientClosedRequest, PayloadTooLarge

# The multipart part names accepted for the input file, in the order they are looked for.
FILE_FIELDS: tuple[str, ...] = ("file", "image", "files")
INSTRUCTION_FIELD = "instruction"


@dataclass(frozen=True)
class TaskInput:
    """One request's input document, and the free-text instruction that came with it, if any."""

    data: bytes
    content_type: str | None
    filename: str | None = None
    instruction: str | None = None
    # The decoding limit when it is not the synchronous body limit (documents fetched by URL).
    max_bytes: int | None = None


def is_multipart(request: Request) -> bool:
    return (request.headers.get("content-type") or "").lower().startswith("multipart/form-data")


def refuse_declared_oversize(request: Request, limit: int) -> None:
    """Refuses a body whose Content-Length already says it is too large, before reading any of it."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise PayloadTooLarge(
            f"the body is {int(declared):,} bytes; the synchronous limit is {limit:,} bytes."
            " Upload larger inputs with POST /v1/uploads"
        )


@asynccontextmanager
async def client_present() -> AsyncIterator[None]:
    """Starlette's ClientDisconnect (the caller hung up mid-upload) as docfn's 499: otherwise it
    reaches the app's last-resort handler and is logged and counted as a 500 of the server."""
    try:
        yield
    except ClientDisconnect:
        raise ClientClosedRequest(
            "the client closed the connection before its request body was read"
        ) from None


def http_error_code(status: int) -> str:
    """The error code of Starlette's own refusals (a malformed multipart body is its 400)."""
    return {400: "bad_input", 404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")


async def read_body(request: Request, limit: int) -> TaskInput:
    """The input file: the raw body, or a multipart part named file / image / files."""
    refuse_declared_oversize(request, limit)
    async with client_present():
        if is_multipart(request):
            return await _read_form(request)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"the body exceeds the synchronous limit of {limit:,} bytes;"
                    " upload it with POST /v1/uploads"
                )
            chunks.append(chunk)
    return TaskInput(b"".join(chunks), request.headers.get("content-type"))


async def _read_form(request: Request) -> TaskInput:
    form = await request.form(max_files=1, max_fields=16)
    upload = next((form[name] for name in FILE_FIELDS if isinstance(form.get(name), UploadFile)), None)
    if not isinstance(upload, UploadFile):
        names = ", ".join(repr(name) for name in FILE_FIELDS)
        raise BadInput(f"multipart request has no file part; name it one of {names}")
    instruction = form.get(INSTRUCTION_FIELD)
    return TaskInput(
        await upload.read(),
        upload.content_type,
        upload.filename,
        instruction if isinstance(instruction, str) else None,
    )
