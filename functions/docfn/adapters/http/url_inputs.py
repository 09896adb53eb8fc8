"""Inputs by URL: ``POST /v1/{task}`` with JSON ``{"url": ...}`` or ``?url=``.

``http(s)://`` documents are fetched with a size cap and one overall deadline (DNS, every redirect
hop and the body: ``deadline.within``); ``s3://`` URLs of this
function's own bucket are read through its object store (its role), no other bucket.

A URL must not make the function a proxy into its own network (SSRF): every hop, redirects
included, is checked and dialled at its checked address (``url_targets``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ...core.errors import BadInput, PayloadTooLarge
from ...core.settings import Settings
from ...service.storage import ObjectStore
from .body import TaskInput, client_present, refuse_declared_oversize
from .deadline import Deadline, within
from .url_targets import UrlTargets, pinned

if TYPE_CHECKING:
    import httpx

# Reads a caller's URL under these rules (UrlInputs.fetch): what the chat API's image_url and the
# task API's url sources are given.
Fetch = Callable[[str], TaskInput]
URL_FIELD = "url"
TEXT_FIELD = "text"
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class UrlInputs:
    """How this function reads URL inputs: its settings and its bucket (``None``: no bucket)."""

    settings: Settings
    store: Callable[[], ObjectStore]

    async def read(self, request: Request) -> TaskInput | None:
        """The request's document if it names one by URL, else None (the body is the document)."""
        url = await _requested_url(request, self.settings.max_body_bytes)
        if url is None:
            return None
        return await run_in_threadpool(self.fetch, url)

    def fetch(self, url: str) -> TaskInput:
        scheme = url.split(":", 1)[0].lower()
        if scheme == "s3":
            return self._read_s3(url)
        if scheme not in ("http", "https"):
            raise BadInput(f"url must be http(s):// or s3:// (this function's bucket); got {url[:200]!r}")
        return self._fetch_http(url)

    def _read_s3(self, url: str) -> TaskInput:
        bucket, _, key = url[len("s3://") :].partition("/")
        store = self.store()
        if bucket != store.bucket:
            raise BadInput(f"s3:// URLs must name this function's bucket ({store.bucket}); got {bucket!r}")
        if not key:
            raise BadInput(f"{url!r} names no object")
        obj = store.get(unquote(key), max_bytes=self.settings.url_max_bytes)
        return TaskInput(
            obj.data, obj.content_type, key.rsplit("/", 1)[-1], max_bytes=self.settings.url_max_bytes
        )

    def _fetch_http(self, url: str) -> TaskInput:
        # Imported here, not with the module: httpx imports click (uvicorn's) for its command line,
        # and the cold start of every function would pay for what only URL inputs use.
        import httpx

        seconds = self.settings.url_fetch_timeout_seconds

        def fetch(deadline: Deadline) -> TaskInput:
            # trust_env=False: an environment proxy would connect to the unchecked host name itself.
            try:
                with httpx.Client(trust_env=False, follow_redirects=False) as client:
                    return self._follow(client, httpx.URL(url), deadline)
            except httpx.HTTPError as exc:
                if deadline.passed:
                    raise self._late(url) from None
                raise BadInput(f"fetching {url} failed: {type(exc).__name__} {exc}".strip()) from None

        return within(seconds, fetch, lambda: self._late(url))

    def _late(self, url: str) -> BadInput:
        timeout = self.settings.url_fetch_timeout_seconds
        return BadInput(f"fetching {url} took longer than {timeout:g} s (resolving, redirects and body)")

    def _follow(self, client: httpx.Client, current: httpx.URL, deadline: Deadline) -> TaskInput:
        """GET ``current``, following redirects by hand: each hop's address is checked first, and
        each hop may wait only for what is left of the one deadline."""
        import httpx

        targets = UrlTargets(self.settings)
        for _ in range(MAX_REDIRECTS + 1):
            target, host, sni = pinned(current, targets.checked_address(current))
            if deadline.passed:
                raise self._late(str(current))
            with client.stream(
                "GET",
                target,
                headers={**host, "Accept": "application/pdf, image/*"},
                extensions=sni,
                timeout=httpx.Timeout(deadline.left()),
            ) as response:
                if response.is_redirect and "location" in response.headers:
                    current = current.join(response.headers["location"])
                    continue
                if response.status_code != 200:
                    raise BadInput(f"fetching {current} answered HTTP {response.status_code}")
                data = self._read_capped(response, str(current), deadline)
                return TaskInput(
                    data,
                    response.headers.get("content-type"),
                    current.path.rsplit("/", 1)[-1] or None,
                    max_bytes=self.settings.url_max_bytes,
                )
        raise BadInput(f"{current} redirects more than {MAX_REDIRECTS} times")

    def _read_capped(self, response: httpx.Response, url: str, deadline: Deadline) -> bytes:
        limit = self.settings.url_max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"{url} is {int(declared):,} bytes; the URL input limit is {limit:,} bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"{url} exceeds the URL input limit of {limit:,} bytes")
            if deadline.passed:
                raise self._late(url)
            chunks.append(chunk)
        return b"".join(chunks)


async def _requested_url(request: Request, limit: int) -> str | None:
    """``?url=``, or a JSON body ``{"url": ...}``; None when the request carries the document."""
    if URL_FIELD in request.query_params:
        return request.query_params[URL_FIELD]
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return None
    refuse_declared_oversize(request, limit)  # a JSON body may be a text task's whole input
    async with client_present():
        raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and URL_FIELD not in body and isinstance(body.get(TEXT_FIELD), str):
        return None  # the body is the input: a text task's {"text": ...}
    if not isinstance(body, dict) or not isinstance(body.get(URL_FIELD), str):
        raise BadInput('a JSON body names the document by URL: {"url": "https://..."} (or is {"text": ...})')
    return str(body[URL_FIELD])
