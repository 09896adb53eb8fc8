"""The body of ``POST /v1/chat/completions`` as MinerU's ``http-client`` backend sends it (OpenAI's
shape, with vLLM's extras), read into what the VLM engine takes.

One user turn: an optional system message, then one user message whose content is at most one image
with text before and/or after it (mineru-vl-utils sends the image first by default, the text first
with ``text_before_image=True``). The image is a base64 data URL, or an http(s) URL fetched under
the rules of URL inputs (``url_inputs``: size and time caps, private targets refused unless
``DOCFN_URL_ALLOWED_NETWORKS`` allows them). Sampling fields are MinerU's: ``temperature``,
``top_p``, ``top_k`` (docfn decodes greedily, which is what MinerU asks for: temperature 0, top_k 1),
``presence_penalty``, ``frequency_penalty``, ``repetition_penalty``,
``vllm_xargs.no_repeat_ngram_size``, ``max_tokens`` / ``max_completion_tokens`` and
``skip_special_tokens``; OpenAI's ``stop``, ``stream`` (+ ``stream_options.include_usage``) and
``n`` (1) too.
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
from .url_inputs import Fetch

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


class StreamOptions(_Strict):
    include_usage: bool = False


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
    stream_options: StreamOptions | None = None
    # The answer is cut before the first of these (vLLM and OpenAI: a string or a list of them).
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1)


@dataclass(frozen=True)
class ChatTurn:
    """One request as the engine takes it."""

    image: Image.Image | None
    prompt: str  # the text after the image (all the text when there is no image)
    system: str | None
    knobs: SamplingKnobs
    max_tokens: int
    skip_special_tokens: bool
    model: str | None
    received: dict[str, Any]  # the request's parameters as sent (logged), without the messages
    text_before_image: str = ""
    stop: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False  # a streamed answer ends with a usage chunk


def parse_chat(
    raw: bytes, limits: DecodeLimits, max_image_bytes: int, max_tokens: int, fetch: Fetch | None = None
) -> ChatTurn:
    """``raw`` (the JSON body) as one chat turn; :class:`BadOptions` (422) or :class:`BadInput` (400)
    with one readable sentence otherwise. ``max_tokens``: the default and the most one may ask;
    ``fetch``: how an http(s) ``image_url`` is read (None: data URLs only). Blocking (it decodes the
    image and may fetch it): callers run it in a worker thread."""
    try:
        body = ChatRequest.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        if first["type"] == "json_invalid":
            raise BadInput(f"the body is not JSON: {first['msg']}") from None
        raise BadOptions(f"{where}: {first['msg']}") from None
    if body.n > 1:
        raise BadOptions(
            f"n is {body.n}: this function answers one choice per request (n may be at most 1);"
            " send the request n times instead (greedy decoding gives the same answer each time)"
        )
    stops = _stops(body.stop)
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
    image, before, prompt = _content(user, limits, max_image_bytes, fetch)
    xargs = body.vllm_xargs or VllmXargs()
    knobs = SamplingKnobs(
        repetition_penalty=body.repetition_penalty,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        no_repeat_ngram_size=xargs.no_repeat_ngram_size,
    )
    received = body.model_dump(exclude={"messages"}, exclude_unset=True)
    return ChatTurn(
        image,
        prompt,
        system,
        knobs,
        wanted,
        body.skip_special_tokens,
        body.model,
        received,
        text_before_image=before,
        stop=stops,
        stream=body.stream,
        include_usage=body.stream_options is not None and body.stream_options.include_usage,
    )


def _stops(stop: str | list[str] | None) -> tuple[str, ...]:
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if any(not text for text in stops):
        raise BadOptions("stop: every stop string must be non-empty")
    return stops


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


def _content(
    message: Message, limits: DecodeLimits, max_bytes: int, fetch: Fetch | None
) -> tuple[Image.Image | None, str, str]:
    """The user message's image (at most one), the text before it and the text after it (all the
    text is "after" when there is no image, as the chat template then reads it the same)."""
    if isinstance(message.content, str) or message.content is None:
        return None, "", message.content or ""
    images = [index for index, part in enumerate(message.content) if part.type == "image_url"]
    if len(images) > 1:
        raise BadOptions(f"the user message has {len(images)} images; send one per request")

    def text(parts: list[ContentPart]) -> str:
        return "".join(part.text or "" for part in parts if part.type == "text")

    if not images:
        return None, "", text(message.content)
    at = images[0]
    image_url = message.content[at].image_url
    if image_url is None:
        raise BadOptions("an image_url part needs its image_url.url")
    image = _read_image(image_url.url, limits, max_bytes, fetch)
    return image, text(message.content[:at]), text(message.content[at + 1 :])


def _read_image(url: str, limits: DecodeLimits, max_bytes: int, fetch: Fetch | None) -> Image.Image:
    """A data URL decoded, or an http(s) URL fetched under the rules of URL inputs."""
    matched = _DATA_URL.fullmatch(url.strip())
    if matched is not None:
        try:
            data = base64.b64decode(matched["data"], validate=True)
        except (binascii.Error, ValueError):
            raise BadInput("image_url.url is not valid base64") from None
        return _single_image(data, matched["type"], limits, max_bytes)
    scheme = url.split(":", 1)[0].strip().lower()
    if scheme not in ("http", "https") or fetch is None:
        raise BadInput(
            "image_url.url must be a base64 data URL (data:image/png;base64,...) or an http(s) URL;"
            f" got {url[:80]!r}"
        )
    fetched = fetch(url.strip())
    return _single_image(fetched.data, fetched.content_type, limits, fetched.max_bytes or max_bytes)


def _single_image(data: bytes, content_type: str | None, limits: DecodeLimits, max_bytes: int) -> Image.Image:
    document = open_document(data, content_type, limits, max_bytes)
    try:
        if document.page_count != 1:
            raise BadInput(f"the image_url holds {document.page_count} pages; send one image")
        page = document.render(0)
    finally:
        document.close()
    return Image.fromarray(np.ascontiguousarray(page.image))
