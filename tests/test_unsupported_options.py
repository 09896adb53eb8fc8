"""An option the loaded pack cannot honour is refused (422), not silently ignored while it still
changes the cache key: ``angle_cls=true`` on an OCR pack without a line-angle classifier."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from docfn_testkit.paths import OCR_PACK, OCR_PACK_VERSION, SAMPLE_PAGE
from docfn_testkit.servers import DocfnServer


def test_angle_cls_without_a_classifier_is_refused_over_http(model_store: Path) -> None:
    server = DocfnServer({"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "ocr"}).start()
    try:
        with server.client() as client:
            refused = client.post(
                "/v1/ocr?angle_cls=true",
                content=SAMPLE_PAGE.read_bytes(),
                headers={"content-type": "image/png"},
            )
            plain = client.post(
                "/v1/ocr?angle_cls=false",
                content=SAMPLE_PAGE.read_bytes(),
                headers={"content-type": "image/png"},
            )
            metrics = client.get("/metrics").text
    finally:
        server.stop()
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "bad_options"
    assert "angle_cls=true needs a pack with a line-angle classifier" in error["message"]
    assert f"{OCR_PACK}@{OCR_PACK_VERSION} has none" in error["message"]
    assert plain.status_code == 200 and plain.json()["result"]["text"]
    assert 'docfn_requests_total{status="422",task="ocr"} 1.0' in metrics


def test_angle_cls_without_a_classifier_is_refused_by_the_cli(model_store: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "docfn"), "run", "ocr", str(SAMPLE_PAGE), "-o", "angle_cls=true"],
        env={"DOCFN_MODEL_STORE": str(model_store), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    # A per-file refusal, like any other bad option of `docfn run` (status 1, the file named).
    assert done.returncode == 1 and done.stdout == ""
    assert "angle_cls=true needs a pack with a line-angle classifier" in done.stderr
    assert "(bad_options)" in done.stderr


def test_a_pack_with_a_classifier_honours_angle_cls(model_store: Path, tmp_path: Path) -> None:
    from docfn.core.settings import Settings
    from docfn.service.service import DocService
    from docfn.tooling.build import build_packs

    store = tmp_path / "store"
    store.mkdir()
    (store / "_wheels").symlink_to((model_store / "_wheels").resolve())
    [pack] = build_packs(["ocr-ppocrv5-mobile"], store)
    service = DocService(Settings(model_store=store, tasks=["ocr"], model_uri=str(pack)))
    outcome = service.run("ocr", SAMPLE_PAGE.read_bytes(), "image/png", {"angle_cls": "true"})
    assert outcome.result["model"] == "ocr-ppocrv5-mobile@1" and outcome.result["text"]
