"""summarize's ``llm`` engine: any OpenAI-compatible ``/chat/completions`` endpoint (vLLM, llama.cpp's
server, Ollama, OpenAI), with a per-call timeout, retries with backoff on network errors, 429 and
5xx, and no call started once the request's deadline is too near for its answer to arrive in time.
The wiring builds it from ``DOCFN_SUMMARIZE_*`` and binds it to the task (``Task.bind``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from ..core.settings import Settings
from ..tasks.summarize.writers import LLM_WRITER, WriterFailed

# A call is not started with less time than this left before the deadline: its answer would be late.
MIN_CALL_SECONDS = 1.0
_RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}
__all__ = ["LLM_WRITER", "EndpointWriter", "endpoint_writer"]


@dataclass(frozen=True)
class EndpointWriter:
    """An OpenAI-compatible chat completions endpoint (``base_url`` ends in ``/v1`` or similar)."""

    base_url: str
    model: str | None
    api_key: str | None
    timeout_seconds: float
    retries: int
    backoff_seconds: float = 0.5

    @property
    def name(self) -> str:
        return f"llm:{self.model or 'default'}"

    @property
    def identity(self) -> list[str | None]:
        return [self.base_url, self.model]

    def __call__(self, prompt: str, max_tokens: int, deadline: float | None) -> str:
        body: dict[str, Any] = {
            "messages": [
                {"role": "system", "content": "You write faithful, concise summaries."},
                {"role": "user", "content": prompt},
            ],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        if self.model:
            body["model"] = self.model
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = self.base_url.rstrip("/") + "/chat/completions"
        problem = "no attempt"
        for attempt in range(self.retries + 1):
            timeout = self._timeout(deadline)
            try:
                response = httpx.post(url, json=body, headers=headers, timeout=timeout)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return _answer(response)
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in _RETRYABLE:
                    break
            if attempt < self.retries:
                self._pause(attempt, deadline)
        raise WriterFailed(f"{url} failed after {attempt + 1} attempt(s): {problem}")

    def _timeout(self, deadline: float | None) -> float:
        if deadline is None:
            return self.timeout_seconds
        left = deadline - time.monotonic()
        if left < MIN_CALL_SECONDS:
            raise WriterFailed(f"the deadline is near ({max(left, 0):.1f} s left): no call to the endpoint")
        return min(self.timeout_seconds, left - MIN_CALL_SECONDS / 2)

    def _pause(self, attempt: int, deadline: float | None) -> None:
        pause = self.backoff_seconds * 2**attempt
        if deadline is not None and time.monotonic() + pause + MIN_CALL_SECONDS > deadline:
            raise WriterFailed("the deadline is near: no time left to retry the endpoint")
        time.sleep(pause)


def _answer(response: httpx.Response) -> str:
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise WriterFailed(f"the endpoint's answer is not a chat completion: {exc!r}") from None
    if not isinstance(content, str) or not content.strip():
        raise WriterFailed("the endpoint answered with no text")
    return content.strip()


def endpoint_writer(settings: Settings) -> EndpointWriter | None:
    """The endpoint ``DOCFN_SUMMARIZE_URL`` names (its key already read into the settings), or None."""
    if not settings.summarize_url:
        return None
    return EndpointWriter(
        settings.summarize_url,
        settings.summarize_model,
        settings.summarize_api_key,
        settings.summarize_timeout_seconds,
        settings.summarize_retries,
    )
