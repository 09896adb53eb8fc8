"""The function image with tracing on, off Lambda (``podman run`` of ``docfn serve``, as Knative
runs it): requests answer 200. The image strips botocore's service models to a keep list, and the
X-Ray SDK's sampler builds an ``xray`` client when it is imported: without that model every request
answered 500. The model is kept now (functions/Dockerfile BOTOCORE_SERVICES), and a tracer that
cannot start would step aside anyway (tests/test_tracing_failsafe.py covers that without podman)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from docfn.packs.catalog import DEFAULT_PACKS
from docfn_testkit.containers import Container, ImageConfig
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import free_port


def test_xray_tracing_under_docfn_serve_answers_200(
    image_for: Callable[[str], ImageConfig], pack_store: Path, tmp_path: Path
) -> None:
    image = image_for("ocr")
    # The OCR pack, readable by the image's unprivileged user (the shared store is the host's).
    store = tmp_path / "models"
    shutil.copytree(pack_store / DEFAULT_PACKS["ocr"], store / DEFAULT_PACKS["ocr"])
    for path in [store, *store.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    port, daemon = free_port(), free_port()  # nothing listens at the daemon's port: UDP goes nowhere
    with Container(
        image.tag,
        entrypoint=["docfn", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={
            "DOCFN_TASKS": "ocr",
            "DOCFN_MODEL_STORE": "/models",
            "DOCFN_TRACING": "xray",
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon}",
        },
        volumes=[f"{store}:/models:ro"],
    ) as container:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and container.running(), container.logs()
            time.sleep(0.5)
        answers = [
            httpx.post(
                f"{url}/v1/ocr",
                content=SAMPLE_PAGE.read_bytes(),
                headers={"content-type": "image/png"},
                timeout=120,
            )
            for _ in range(2)
        ]
        records, logs = container.log_records(), container.logs()
    assert [answer.status_code for answer in answers] == [200, 200], (answers[0].text, logs[-3000:])
    # The SDK started: no "tracing failed" warning, no UnknownServiceError anywhere.
    assert not [r for r in records if r.get("logger") == "docfn.tracing"], records
    assert "UnknownServiceError" not in "".join(str(r) for r in records)
