"""The body of ``POST /v1/chat/completions`` as MinerU's ``http-client`` backend sends it (OpenAI's
shape, with vLLM's extras), read into what the VLM engine takes.

One user turn: an optional system message, then one user message whose content is at most one image
(a base64 data URL) followed by text, as mineru-vl-utils sends by default. Sampling fields are
MinerU's: ``temperature``, ``top_p``, ``top_k`` (docfn decodes greedily, which is what MinerU asks
for: temperature 0, top_k 1), ``presence_penalty``, ``frequency_penalty``, ``repetition_penalty``,
``vllm_xargs.no_repeat_ngram_size``, ``max_tokens`` / ``max_completion_tokens`` and
``skip_special_tokens``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...core.documents import DecodeLimits, open_document
from ...core.errors import BadInput, BadOptions
from ...tasks.vlm.sampling import SamplingKnobs

_DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)?(;[\w=.-]+)*;base64,(?P<data>.*)", re.DOTALL)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageUrl(_Strict):
    url: str
    detail: str | None = None


class ContentPart(_Strict):
    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: ImageUrl | None = None


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class VllmXargs(BaseModel):
    # vLLM's free-form extras: MinerU's logits processor reads no_repeat_ngram_size (and a debug flag).
    model_config = ConfigDict(extra="allow", frozen=True)

    no_repeat_ngram_size: int = Field(default=0, ge=0)


class ChatRequest(_Strict):
    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=-1)
    presence_penalty: float = Field(default=0.0, ge=-2, le=2)
    frequency_penalty: float = Field(default=0.0, ge=-2, le=2)
    repetition_penalty: float = Field(default=1.0, gt=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    skip_special_tokens: bool = True
    vllm_xargs: VllmXargs | None = None
    # vLLM's scheduling priority: accepted, and docfn's queue serves in arrival order.
    priority: int | None = None
    stream: bool = False
    n: int = 1


@dataclass(frozen=True)
class ChatTurn:
    """One request as the engine takes it."""

    image: Image.Image | None
    prompt: str
    system: str | None
    knobs: SamplingKnobs
    max_tokens: int
    skip_special_tokens: bool
    model: str | None
    received: dict[str, Any]  # the request's parameters as sent (logged), without the messages


def parse_chat(raw: bytes, limits: DecodeLimits, max_image_bytes: int, max_tokens: int) -> ChatTurn:
    """``raw`` (the JSON body) as one chat turn; :class:`BadOptions` (422) or :class:`BadInput` (400)
    with one readable sentence otherwise. ``max_tokens``: the default and the most one may ask."""
    try:
        body = ChatRequest.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        if first["type"] == "json_invalid":
            raise BadInput(f"the body is not JSON: {first['msg']}") from None
        raise BadOptions(f"{where}: {first['msg']}") from None
    if body.stream:
        raise BadOptions("stream is not supported: docfn answers each chat completion whole")
    if body.n != 1:
        raise BadOptions(f"n must be 1, not {body.n}")
    greedy = body.temperature in (None, 0) or body.top_k == 1
    if not greedy:
        raise BadOptions(
            f"temperature {body.temperature} with top_k {body.top_k}: docfn decodes greedily;"
            " send temperature 0 or top_k 1 (as MinerU's client does)"
        )
    wanted = body.max_completion_tokens or body.max_tokens or max_tokens
    if wanted > max_tokens:
        raise BadOptions(f"max_tokens {wanted} is above this function's limit of {max_tokens}")
    system, user = _turn(body.messages)
    image, prompt = _content(user, limits, max_image_bytes)
    xargs = body.vllm_xargs or VllmXargs()
    knobs = SamplingKnobs(
        repetition_penalty=body.repetition_penalty,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        no_repeat_ngram_size=xargs.no_repeat_ngram_size,
    )
    received = body.model_dump(exclude={"messages"}, exclude_unset=True)
    return ChatTurn(image, prompt, system, knobs, wanted, body.skip_special_tokens, body.model, received)


def _turn(messages: list[Message]) -> tuple[str | None, Message]:
    system = None
    if messages[0].role == "system":
        system = _text_only(messages[0])
        messages = messages[1:]
    if len(messages) != 1 or messages[0].role != "user":
        raise BadOptions("messages must be an optional system message and then one user message")
    return system, messages[0]


def _text_only(message: Message) -> str:
    if isinstance(message.content, str) or message.content is None:
        return message.content or ""
    if any(part.type != "text" for part in message.content):
        raise BadOptions("the system message takes text only")
    return "".join(part.text or "" for part in message.content)


def _content(message: Message, limits: DecodeLimits, max_bytes: int) -> tuple[Image.Image | None, str]:
    """The user message's image (at most one, before the text) and its text."""
    if isinstance(message.content, str) or message.content is None:
        return None, message.content or ""
    images = [part for part in message.content if part.type == "image_url"]
    if len(images) > 1:
        raise BadOptions(f"the user message has {len(images)} images; send one per request")
    if images and message.content[0].type != "image_url":
        raise BadOptions("put the image before the text in the user message (MinerU's default order)")
    text = "".join(part.text or "" for part in message.content if part.type == "text")
    if not images:
        return None, text
    if images[0].image_url is None:
        raise BadOptions("an image_url part needs its image_url.url")
    return _decode_image(images[0].image_url.url, limits, max_bytes), text


def _decode_image(url: str, limits: DecodeLimits, max_bytes: int) -> Image.Image:
    matched = _DATA_URL.fullmatch(url.strip())
    if matched is None:
        raise BadInput("image_url.url must be a base64 data URL (data:image/png;base64,...)")
    try:
        data = base64.b64decode(matched["data"], validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("image_url.url is not valid base64") from None
    document = open_document(data, matched["type"], limits, max_bytes)
    try:
        if document.page_count != 1:
            raise BadInput(f"the image_url holds {document.page_count} pages; send one image")
        page = document.render(0)
    finally:
        document.close()
    return Image.fromarray(np.ascontiguousarray(page.image))
