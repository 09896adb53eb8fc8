"""A chat completion's answer as the API returns it: OpenAI's ``stop`` strings applied to the
engine's text, then the ``chat.completion`` body, or the ``chat.completion.chunk`` events of a
streamed one.

Stop strings cut the decoded text (vLLM matches them on the detokenised output too): the answer ends
before the first occurrence of any of them, and its ``finish_reason`` is ``stop``. The engine decodes
until a stop token or ``max_tokens`` whatever the stop strings, so ``usage.completion_tokens`` counts
the tokens it generated, the cut ones included.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class ChatAnswer:
    text: str
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int
    model: str
    id: str
    created: int

    @classmethod
    def of(
        cls, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int, model: str
    ) -> ChatAnswer:
        return cls(
            text,
            finish_reason,
            prompt_tokens,
            completion_tokens,
            model,
            f"chatcmpl-{uuid.uuid4().hex}",
            int(time.time()),
        )

    def cut_at(self, stops: Sequence[str]) -> ChatAnswer:
        """The answer ending before the earliest stop string in it (finish reason ``stop``), or as is."""
        found = [at for at in (self.text.find(stop) for stop in stops) if at >= 0]
        if not found:
            return self
        return ChatAnswer(
            self.text[: min(found)],
            "stop",
            self.prompt_tokens,
            self.completion_tokens,
            self.model,
            self.id,
            self.created,
        )

    @property
    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def completion(self) -> dict[str, Any]:
        """OpenAI's ``chat.completion`` body: ``choices[0].message.content`` is what MinerU reads."""
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.text},
                    "finish_reason": self.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": self.usage,
        }

    def chunks(self, include_usage: bool) -> Iterator[bytes]:
        """Server-sent events in OpenAI's streaming format: the role, the content, a last chunk with
        the finish reason, a usage chunk (``stream_options.include_usage``; its ``choices`` empty),
        then ``data: [DONE]``. The engine answers whole, so the content is one chunk."""
        yield self._event({"role": "assistant", "content": ""}, None, include_usage)
        if self.text:
            yield self._event({"content": self.text}, None, include_usage)
        yield self._event({}, self.finish_reason, include_usage)
        if include_usage:
            yield _sse({**self._chunk_head(), "choices": [], "usage": self.usage})
        yield DONE

    def _chunk_head(self) -> dict[str, Any]:
        kind = "chat.completion.chunk"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def _event(self, delta: dict[str, str], finish_reason: str | None, include_usage: bool) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunk: dict[str, Any] = {**self._chunk_head(), "choices": [choice]}
        if include_usage:
            chunk["usage"] = None  # OpenAI: every chunk but the last carries usage null
        return _sse(chunk)


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"
