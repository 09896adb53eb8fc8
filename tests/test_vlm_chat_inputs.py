"""Bad and awkward images on the chat API, in process on the tiny random pack: a block crop larger than
the VLM's pixel budget is resized as Qwen2-VL's processor resizes it (never refused, never silently
dropped), one beyond the encoder's aspect ratio is refused saying so, and an http(s) ``image_url``
follows the rules of URL inputs (a loopback server: refused unless DOCFN_URL_ALLOWED_NETWORKS allows
it; size and time caps; unreachable is a 400 naming the URL)."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from docfn.packs.manifest import verify_pack
from docfn_testkit.chat import AUTH, app_client, chat_body, data_url, text_crop
from docfn_testkit.paths import DEVSET
from docfn_testkit.servers import free_port

FETCH_TIMEOUT = 1.0
URL_MAX_BYTES = 200_000


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class _Images(BaseHTTPRequestHandler):
    """A loopback image server: /crop.png, /big.png (above the URL cap), /slow.png (past the fetch
    deadline), anything else 404."""

    crop = _png(text_crop())
    big = _png(Image.fromarray(np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)))

    def do_GET(self) -> None:
        if self.path == "/slow.png":
            time.sleep(FETCH_TIMEOUT * 3)
        body = {"/crop.png": self.crop, "/big.png": self.big, "/slow.png": self.crop}.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def image_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def strict(vlm_tiny_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The default: URL inputs reach public addresses only."""
    yield from app_client(model_uri=str(vlm_tiny_pack), model_store=tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def allowing(vlm_tiny_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A laptop's setting: loopback allowed, with small caps to test them."""
    yield from app_client(
        model_uri=str(vlm_tiny_pack),
        model_store=tmp_path_factory.mktemp("store"),
        url_allowed_networks=["127.0.0.0/8"],
        url_fetch_timeout_seconds=FETCH_TIMEOUT,
        url_max_bytes=URL_MAX_BYTES,
    )


def _with_image(url: str, text: str = "\nText Recognition:") -> dict[str, Any]:
    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}]
    return chat_body(messages=[{"role": "user", "content": content}], max_tokens=2, max_completion_tokens=2)


def _error(client: httpx.Client, body: dict[str, Any], status: int) -> str:
    answer = client.post("/v1/chat/completions", json=body)
    assert answer.status_code == status, answer.text
    return str(answer.json()["error"]["message"])


def test_a_loopback_image_url_is_refused_unless_allowed(
    strict: httpx.Client, allowing: httpx.Client, image_server: str
) -> None:
    message = _error(strict, _with_image(f"{image_server}/crop.png"), 400)
    assert "127.0.0.1" in message and "DOCFN_URL_ALLOWED_NETWORKS" in message
    # The same request where a development setting allows loopback: fetched and answered, exactly
    # as the same image sent inline.
    fetched = allowing.post("/v1/chat/completions", json=_with_image(f"{image_server}/crop.png"))
    inline = allowing.post("/v1/chat/completions", json=_with_image(data_url(text_crop())))
    assert fetched.status_code == inline.status_code == 200, fetched.text
    assert fetched.json()["usage"] == inline.json()["usage"]
    assert fetched.json()["choices"][0]["message"] == inline.json()["choices"][0]["message"]


def test_an_image_url_keeps_the_url_inputs_caps(allowing: httpx.Client, image_server: str) -> None:
    assert str(URL_MAX_BYTES) in _error(allowing, _with_image(f"{image_server}/big.png"), 413).replace(
        ",", ""
    )
    assert "answered HTTP 404" in _error(allowing, _with_image(f"{image_server}/missing.png"), 400)
    started = time.monotonic()
    slow = _error(allowing, _with_image(f"{image_server}/slow.png"), 400)
    assert "took longer than" in slow and time.monotonic() - started < FETCH_TIMEOUT * 3
    unreachable = f"http://127.0.0.1:{free_port()}/crop.png"  # nothing listens there
    assert unreachable in _error(allowing, _with_image(unreachable), 400)


def test_a_crop_above_the_pixel_budget_is_resized_as_qwen2_vl_resizes_it(
    strict: httpx.Client, vlm_tiny_pack: Path
) -> None:
    """A whole page sent as one block (millions of pixels against the pack's budget): answered, its
    image tokens those of transformers' ``smart_resize`` (multiples of 28, within min/max pixels)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    processor = verify_pack(vlm_tiny_pack).config["processor"]
    page = Image.open(DEVSET / "001.png").convert("RGB")
    assert page.width * page.height > 10 * processor["max_pixels"]
    answer = strict.post("/v1/chat/completions", json=_with_image(data_url(page)), headers=AUTH)
    assert answer.status_code == 200, answer.text
    text_only = chat_body(messages=[{"role": "user", "content": "\nText Recognition:"}], max_tokens=2)
    alone = strict.post("/v1/chat/completions", json=text_only, headers=AUTH).json()
    image_tokens = answer.json()["usage"]["prompt_tokens"] - alone["usage"]["prompt_tokens"] - 2
    height, width = smart_resize(
        page.height,
        page.width,
        factor=28,
        min_pixels=processor["min_pixels"],
        max_pixels=processor["max_pixels"],
    )
    assert height % 28 == 0 and width % 28 == 0 and height * width <= processor["max_pixels"]
    assert image_tokens == height * width // (28 * 28)


def test_a_strip_beyond_the_encoders_aspect_ratio_is_refused_saying_so(strict: httpx.Client) -> None:
    """Qwen2-VL's processor takes at most 200:1 (MinerU's client pads strips to 50:1 first)."""
    strip = Image.new("RGB", (4200, 20), "white")
    assert "aspect ratio above 200" in _error(strict, _with_image(data_url(strip)), 400)
    padded = Image.new("RGB", (4200, 84), "white")  # 50:1, as MinerU's client sends it
    assert strict.post("/v1/chat/completions", json=_with_image(data_url(padded))).status_code == 200
