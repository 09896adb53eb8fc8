"""X-Ray tracing: segments with subsegments around cache, model load and inference reach a daemon.

The "daemon" is a UDP socket on loopback at AWS_XRAY_DAEMON_ADDRESS, which is what the SDK sends to.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from docfn.adapters.wiring import build_service
from docfn.core.settings import Settings

from .conftest import SAMPLE_PAGE


def _names(document: dict) -> list[str]:
    found = []
    for sub in document.get("subsegments", []):
        found.append(sub["name"])
        found.extend(_names(sub))
    return found


def test_subsegments_are_sent_to_the_daemon(model_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(10)
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", f"127.0.0.1:{daemon.getsockname()[1]}")
    service = build_service(Settings(tasks=["ocr"], model_store=model_store, tracing=True))
    service.run("ocr", SAMPLE_PAGE.read_bytes(), "image/png")
    header, _, body = daemon.recv(65535).decode().partition("\n")
    assert json.loads(header)["format"] == "json"
    segment = json.loads(body)
    assert segment["name"] == "docfn-ocr"
    assert segment["annotations"]["task"] == "ocr"
    assert {"cache_get", "model_load", "inference", "cache_set"} <= set(_names(segment))
    daemon.close()


def test_tracing_off_never_imports_the_sdk(model_store: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from docfn.adapters.wiring import build_service;"
        "from docfn.core.settings import Settings;"
        f"s = build_service(Settings(tasks=['ocr'], model_store={str(model_store)!r}));"
        f"s.run('ocr', open({str(SAMPLE_PAGE)!r}, 'rb').read(), 'image/png');"
        "print('aws_xray_sdk' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
