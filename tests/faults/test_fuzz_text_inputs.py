"""Property-based fuzzing (hypothesis) of the two parsers of text bodies, as the image decoders are
fuzzed (``test_fuzz_decoders.py``): the chat request of ``POST /v1/chat/completions``
(``adapters/http/chat_request.py``) and summarize's text input (``core/text_input.py``). Any body
ends in a result or in docfn's own 4xx error, never another exception (a 500).

Bodies are both structured (chat requests with every field given random JSON values, images as good
and broken data URLs) and raw (random bytes, deeply nested JSON). Derandomised and bounded."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from docfn.adapters.http.chat_request import parse_chat
from docfn.core.documents import DecodeLimits
from docfn.core.errors import DocfnError
from docfn.core.text_input import is_text_input, read_text_input
from docfn_testkit.inputs import image_bytes

LIMITS = DecodeLimits(max_pixels=4_000_000, max_pages=1, pdf_dpi=72)
MAX_IMAGE_BYTES = 1024 * 1024
MAX_TOKENS = 512
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PNG = image_bytes(Image.new("RGB", (32, 16), "white"), "PNG")
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
IMAGE_URLS = st.one_of(
    st.just("data:image/png;base64," + base64.b64encode(PNG).decode()),
    st.binary(max_size=64).map(lambda b: "data:image/png;base64," + base64.b64encode(b).decode()),
    st.text(max_size=40).map(lambda t: "data:image/png;base64," + t),
    st.sampled_from(["http://169.254.169.254/", "ftp://x/y.png", "data:,", "data:image/png;base64"]),
    st.text(max_size=30),
)
PART = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=40)}),
    st.fixed_dictionaries(
        {"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": IMAGE_URLS})}
    ),
    st.dictionaries(st.sampled_from(["type", "text", "image_url", "extra"]), JSON_VALUES, max_size=3),
)
MESSAGE = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["system", "user", "assistant", "tool", ""]),
        "content": st.one_of(st.text(max_size=40), st.lists(PART, max_size=4), JSON_VALUES),
    }
)
FIELDS = st.sampled_from(
    [
        "model",
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "n",
        "stream",
        "stream_options",
        "vllm_xargs",
        "skip_special_tokens",
        "repetition_penalty",
        "presence_penalty",
        "frequency_penalty",
    ]
)


@st.composite
def chat_bodies(draw: st.DrawFn) -> bytes:
    body: dict[str, Any] = {"messages": draw(st.lists(MESSAGE, max_size=4))}
    for name in draw(st.lists(FIELDS, max_size=5, unique=True)):
        body[name] = draw(JSON_VALUES)
    return json.dumps(body).encode()


def _nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


RAW_BODIES = st.one_of(
    st.binary(max_size=256),
    st.text(max_size=200).map(str.encode),
    st.integers(min_value=100, max_value=200_000).map(_nested),
    st.integers(min_value=100, max_value=200_000).map(lambda d: b'{"text": ' + _nested(d) + b"}"),
)


def _answered(call: Any) -> Any:
    """The parser's result, or None for docfn's own 4xx; anything else fails the example."""
    try:
        return call()
    except DocfnError as exc:
        assert 400 <= exc.status < 500, (exc.status, exc.code, exc.message)
        return None


@FUZZ
@given(st.one_of(chat_bodies(), RAW_BODIES))
def test_any_chat_body_is_a_turn_or_a_client_error(raw: bytes) -> None:
    _answered(lambda: parse_chat(raw, LIMITS, MAX_IMAGE_BYTES, MAX_TOKENS))


TEXT_TYPES = st.sampled_from(
    [
        None,
        "text/plain",
        "text/markdown",
        "application/json",
        "application/octet-stream",
        "text/plain; charset=utf-8",
    ]
)
JSON_TEXT_BODIES = st.one_of(
    st.builds(
        lambda text, fmt: json.dumps({"text": text, "format": fmt}).encode(),
        st.text(max_size=60),
        JSON_VALUES,
    ),
    st.builds(lambda value: json.dumps({"text": value}).encode(), JSON_VALUES),
    # Lone surrogates are valid JSON escapes but no UTF-8 text: a result must still encode.
    st.sampled_from([b'{"text": "\\ud800 tail"}', b'{"text": "ok \\udfff"}', b'"\\ud800"']),
)


@FUZZ
@given(st.one_of(RAW_BODIES, JSON_TEXT_BODIES, st.text(max_size=200).map(str.encode)), TEXT_TYPES)
def test_any_text_body_is_text_or_a_client_error(raw: bytes, content_type: str | None) -> None:
    is_text_input(raw, content_type)  # never raises: it only decides which parser reads the body
    read = _answered(lambda: read_text_input(raw, content_type))
    if read is not None:
        assert read.text.strip() and read.format in ("plain", "markdown")
        read.text.encode("utf-8")  # the text can be summarised and answered as JSON
