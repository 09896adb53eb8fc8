"""Chat completion requests as MinerU's VLM client (mineru-vl-utils, http-client backend) sends them,
and the in-process app that answers them, for the chat API's tests."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
from PIL import Image

from .paths import DEVSET

API_KEY = "s3cret"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def app_client(**settings: Any) -> Iterator[httpx.Client]:
    """The app serving ``vlm`` in this process (no batching window unless ``settings`` give one), as a
    client; ``yield from``."""
    from fastapi.testclient import TestClient

    from docfn.adapters.http.app import create_app
    from docfn.adapters.wiring import build_service
    from docfn.core.settings import Settings

    config = Settings(**{"tasks": ["vlm"], "vlm_batch_window_ms": 0, "build_packs": True, **settings})
    app = create_app(config, build_service(config))
    # Starlette's TestClient runs the ASGI app in a thread: the engine's worker thread answers it.
    with TestClient(app) as client:
        yield client  # type: ignore[misc]


def data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def text_crop() -> Image.Image:
    """A line of text from devset page 001."""
    return Image.open(DEVSET / "001.png").crop((80, 120, 700, 190))


def chat_body(**overrides: Any) -> dict[str, Any]:
    """A request as mineru-vl-utils builds one (HttpVlmClient.build_request_body); ``None`` drops a key."""
    body = {
        "model": None,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": data_url(text_crop())}},
                    {"type": "text", "text": "\nText Recognition:"},
                ],
            },
        ],
        "temperature": 0.0,
        "top_p": 0.01,
        "top_k": 1,
        "presence_penalty": 1.0,
        "frequency_penalty": 0.05,
        "repetition_penalty": 1.0,
        "vllm_xargs": {"no_repeat_ngram_size": 100, "debug": False},
        "max_completion_tokens": 6,
        "max_tokens": 6,
        "skip_special_tokens": False,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}
