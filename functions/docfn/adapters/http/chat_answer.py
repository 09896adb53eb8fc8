"""A chat completion's answer as the API returns it: the ``chat.completion`` body, or the
``chat.completion.chunk`` events of a streamed one (:class:`Chunks`, sent as the engine decodes).

Stop strings are matched by the engine on the detokenised output as it decodes (vLLM does so too):
the answer ends before the first occurrence of any of them, decoding stops there, its
``finish_reason`` is ``stop`` and ``usage.completion_tokens`` counts the tokens actually generated
(the one completing the stop string included). :meth:`ChatAnswer.cut_at` applies them to a whole
text.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Chunks:
    """A streamed answer's server-sent events in OpenAI's format: the role, the content piece by
    piece as it is decoded, a last chunk with the finish reason, a usage chunk
    (``stream_options.include_usage``; its ``choices`` empty), then ``data: [DONE]``."""

    model: str
    include_usage: bool
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    def role(self) -> bytes:
        return self._event({"role": "assistant", "content": ""}, None)

    def content(self, piece: str) -> bytes:
        return self._event({"content": piece}, None)

    def end(self, answer: ChatAnswer) -> Iterator[bytes]:
        yield self._event({}, answer.finish_reason)
        if self.include_usage:
            yield _sse({**self._head(), "choices": [], "usage": answer.usage})
        yield DONE

    def error(self, status: int, code: str, message: str) -> Iterator[bytes]:
        """A failure after the stream began (its status is already 200): an error event, as vLLM
        sends one, then ``[DONE]``."""
        yield _sse({"error": {"code": code, "message": message, "status": status}})
        yield DONE

    def _head(self) -> dict[str, Any]:
        kind = "chat.completion.chunk"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def _event(self, delta: dict[str, str], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunk: dict[str, Any] = {**self._head(), "choices": [choice]}
        if self.include_usage:
            chunk["usage"] = None  # OpenAI: every chunk but the last carries usage null
        return _sse(chunk)


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"
