"""Reading the input file of a task request: a raw body, or one part of a multipart form."""

from __future__ import annotations

from fastapi import Request

from ...core.errors import BadInput, PayloadTooLarge


async def read_body(request: Request, limit: int) -> tuple[bytes, str | None]:
    """The input file: the raw body, or the ``file`` part of a multipart form. Refuses > limit early."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise PayloadTooLarge(
            f"the body is {int(declared):,} bytes; the synchronous limit is {limit:,} bytes."
            " Upload larger inputs with POST /v1/uploads"
        )
    content_type = request.headers.get("content-type")
    if content_type and content_type.lower().startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=16)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadInput("multipart request has no file part named 'file'")
        data = await upload.read()
        return data, upload.content_type
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"the body exceeds the synchronous limit of {limit:,} bytes; upload it with POST /v1/uploads"
            )
        chunks.append(chunk)
    return b"".join(chunks), content_type
