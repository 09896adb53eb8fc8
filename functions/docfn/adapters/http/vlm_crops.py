"""Many crops in one request to a VLM task (``POST /v1/vlm``, ``/v1/formula``, ``/v1/chart``).

Why: the VLM's batching queue batches what reaches one instance at once, and on AWS Lambda an
instance serves one request at a time, so a page's blocks sent as one request each never share a
forward pass there (and each pays its own invocation). A multipart request with several file parts
(``files``, ``image`` or ``file``, repeated) carries a page's blocks together: every crop is run as
its own task run (its own cache entry, content-addressed as a single crop's is) on its own thread,
so they reach the engine's queue together and decode in shared batches, and the answers come back
as a list in the order of the parts. One file part is the ordinary single-input request.

Prompts (``vlm``): one ``prompt`` form field for every crop, or one per crop in the order of the
crops; other options as query parameters, shared by every crop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from ...core.errors import BadInput, BadOptions, DocfnError
from ...service.outcome import Outcome
from .body import FILE_FIELDS, INSTRUCTION_FIELD, TaskInput, client_present, refuse_declared_oversize

# Crops one request may carry: two engine batches. At the measured int8 figures on 2 vCPUs
# (docs/benchmarks/vlm_2026-11-26.md: block encode 1.7 s + prefill 0.5 s, decode ~20 tokens/s; per-row int8
# adds 11-20 %, docs/benchmarks/vlm_int8.md) 32 formula crops of 50 tokens take ~85 s to encode and
# ~10 s to decode in two batches: inside the 120 s deadline Terraform gives formula and chart
# (DOCFN_VLM_TIMEOUT_SECONDS), with a Lambda's 4.6-6 vCPUs to spare. Bodies stay within 6 MB anyway.
MAX_CROPS = 32
# Crops decoding at once: the engine's default batch (docfn.tasks.vlm.batching.DEFAULT_MAX_BATCH).
CROP_THREADS = 16
PROMPT_FIELD = "prompt"


@dataclass(frozen=True)
class Crop:
    data: bytes
    content_type: str | None
    filename: str | None
    prompt: str | None  # None: the request's prompt option (or the task's default)


async def read_inputs(request: Request, limit: int) -> tuple[TaskInput, dict[str, str]] | list[Crop]:
    """A VLM task's multipart body: for one file part, the :class:`TaskInput` and the options its
    form gives (``prompt``); for more, the crops."""
    refuse_declared_oversize(request, limit)
    async with client_present():
        form = await request.form(max_files=MAX_CROPS, max_fields=MAX_CROPS + 16)
        uploads = [
            part for name in FILE_FIELDS for part in form.getlist(name) if isinstance(part, UploadFile)
        ]
        if not uploads:
            names = ", ".join(repr(name) for name in FILE_FIELDS)
            raise BadInput(f"multipart request has no file part; name it one of {names}")
        datas = [await upload.read() for upload in uploads]
    if sum(len(data) for data in datas) > limit:
        raise BadInput(f"the crops exceed the synchronous limit of {limit:,} bytes together")
    instruction = form.get(INSTRUCTION_FIELD)
    prompts = [value for value in form.getlist(PROMPT_FIELD) if isinstance(value, str)]
    if len(uploads) == 1:
        if len(prompts) > 1:
            raise BadOptions(f"one file part and {len(prompts)} 'prompt' fields: give one prompt")
        given = TaskInput(
            datas[0],
            uploads[0].content_type,
            uploads[0].filename,
            instruction if isinstance(instruction, str) else None,
        )
        return given, ({PROMPT_FIELD: prompts[0]} if prompts else {})
    if instruction is not None:
        raise BadOptions("a request with several crops takes 'prompt' form fields, not 'instruction'")
    if len(prompts) not in (0, 1, len(uploads)):
        raise BadOptions(
            f"{len(uploads)} crops and {len(prompts)} 'prompt' fields: give one prompt, or one per crop"
        )
    per_crop = prompts * len(uploads) if len(prompts) == 1 else prompts or [None] * len(uploads)
    return [
        Crop(data, upload.content_type, upload.filename, prompt)
        for data, upload, prompt in zip(datas, uploads, per_crop, strict=True)
    ]


RunOne = Callable[[bytes, str | None, Mapping[str, str], float], Outcome]


def run_crops(
    run_one: RunOne, crops: list[Crop], options: Mapping[str, str], timeout: float
) -> list[Outcome]:
    """Every crop as its own task run, on its own thread (so the engine batches them), in order.
    The first crop that fails fails the request, saying which crop it was."""
    deadline = time.monotonic() + timeout

    def one(index: int) -> Outcome:
        crop = crops[index]
        given = dict(options) if crop.prompt is None else {**options, PROMPT_FIELD: crop.prompt}
        try:
            return run_one(crop.data, crop.content_type, given, deadline)
        except DocfnError as exc:
            exc.message = f"crop {index} ({crop.filename or 'unnamed'}): {exc.message}"
            exc.args = (exc.message,)
            raise

    with ThreadPoolExecutor(min(len(crops), CROP_THREADS), thread_name_prefix="docfn-vlm-crop") as pool:
        return list(pool.map(one, range(len(crops))))


def body(task: str, outcomes: list[Outcome], request_id: str) -> dict[str, Any]:
    """The list of answers, in the order of the crops, each as a single crop's body would be."""
    return {
        "task": task,
        "request_id": request_id,
        "crops": len(outcomes),
        "cached": all(outcome.cached for outcome in outcomes),
        "cold": any(outcome.cold for outcome in outcomes),
        "results": [
            {k: v for k, v in outcome.body().items() if k not in ("task", "request_id")}
            for outcome in outcomes
        ],
    }


__all__ = ["MAX_CROPS", "Crop", "body", "read_inputs", "run_crops"]
