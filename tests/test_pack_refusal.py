"""Bad input (issue 26): a model pack that fails verification during init (the eager load Lambda's
init and Knative's start-up run) or at a SnapStart restore leaves the function unready, with the
reason in ``/readyz`` and the log, and never half-loaded: no ONNX Runtime session exists for any of
the task's packs, the good ones' included. A pack baked into the image is verified the same way and
refused, never replaced by a fetch. Real packs (built from their wheels), corrupted on disk."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from docfn.adapters.aws_lambda import snapshot
from docfn.adapters.http.app import create_app
from docfn.adapters.wiring import build_service
from docfn.cloud import prefetch
from docfn.core import onnx_sessions
from docfn.core.settings import Settings
from docfn.packs.manifest import PackVerificationError
from docfn.packs.refs import parse_pack_uri
from docfn.service.pack_sources import PackResolver
from docfn.service.service import DocService
from docfn.tasks.registry import default_pack_settings
from docfn_testkit.paths import SAMPLE_PAGE


def copy_packs(model_store: Path, task: str, target: Path, corrupt: str | None = None) -> dict[str, str]:
    """The task's default packs copied under ``target`` (fresh paths: no session of this process is
    cached for them), the pack named ``corrupt`` with one byte of its largest file flipped (size
    unchanged: only the sha256 tells); setting -> pack directory."""
    settings = {}
    for setting, ref in default_pack_settings(task).items():
        pack = target / ref
        if not pack.exists():
            shutil.copytree(model_store / ref, pack)
        if ref.split("/")[0] == corrupt:
            largest = max((p for p in pack.iterdir() if p.suffix == ".onnx"), key=lambda p: p.stat().st_size)
            data = bytearray(largest.read_bytes())
            data[len(data) // 2] ^= 0xFF
            largest.write_bytes(bytes(data))
        settings[setting] = str(pack)
    return settings


def service_for(task: str, packs: dict[str, str], store: Path) -> DocService:
    fields = {setting.removeprefix("DOCFN_").lower(): uri for setting, uri in packs.items()}
    settings = Settings(tasks=[task], eager_load=True, model_store=store, build_packs=False, **fields)
    return build_service(settings)


def sessions_under(root: Path) -> list[str]:
    return [key[0] for key in onnx_sessions._sessions if Path(key[0]).is_relative_to(root)]


@pytest.fixture
def docfn_log() -> Iterator[list[logging.LogRecord]]:
    """Every record of the ``docfn`` loggers (which do not propagate once the JSON log is configured)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.INFO)
    logger = logging.getLogger("docfn")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(previous)


def test_a_refused_pack_at_init_leaves_parse_unready_with_the_reason_and_nothing_loaded(
    model_store: Path, tmp_path: Path, docfn_log: list[logging.LogRecord]
) -> None:
    packs = copy_packs(model_store, "parse", tmp_path / "packs", corrupt="ocr-ppocrv6-tiny")
    service = service_for("parse", packs, tmp_path / "store")
    service.start_eager_load()
    assert service.wait_eager_load(120)

    readiness = service.readiness()
    assert readiness["ready"] is False
    assert "rec.onnx sha256" in readiness["error"] and "does not match manifest" in readiness["error"]
    assert readiness["tasks"]["parse"]["loaded"] is False
    assert "rec.onnx sha256" in readiness["tasks"]["parse"]["error"]
    # Never half-loaded: the layout and table packs verified, yet no session of any pack was built.
    assert sessions_under(tmp_path) == []

    with TestClient(create_app(service.settings, service=service)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "rec.onnx sha256" in ready.json()["error"]
        # A request meets the same refusal (500, its code), and nothing is loaded by it either.
        page = SAMPLE_PAGE.read_bytes()
        answer = client.post("/v1/parse", content=page, headers={"content-type": "image/png"})
        assert answer.status_code == 500 and answer.json()["error"]["code"] == "pack_verification_failed"
    assert sessions_under(tmp_path) == []

    failed = [r for r in docfn_log if r.getMessage().startswith("eager model load failed")]
    assert failed and "rec.onnx sha256" in failed[0].getMessage()


def test_a_snapshot_taken_unready_says_why_and_a_restore_verifies_again(
    model_store: Path, tmp_path: Path, docfn_log: list[logging.LogRecord]
) -> None:
    packs = copy_packs(model_store, "ocr", tmp_path / "packs", corrupt="ocr-ppocrv6-tiny")
    service = service_for("ocr", packs, tmp_path / "store")

    snapshot.before_snapshot(service)  # loads (and is refused) before the snapshot is taken
    snapshot.after_restore(service)  # loads again in the restored container: refused again
    assert service.wait_eager_load(120)

    hooks = [r for r in docfn_log if r.getMessage() == "snapstart"]
    assert [r.fields["hook"] for r in hooks] == ["before_snapshot", "after_restore"]  # type: ignore[attr-defined]
    for record in hooks:
        assert record.levelno == logging.WARNING
        assert record.fields["ready"] is False  # type: ignore[attr-defined]
        assert "det.onnx sha256" in record.fields["error"] or "rec.onnx sha256" in record.fields["error"]  # type: ignore[attr-defined]
    refusals = [r for r in docfn_log if r.getMessage().startswith("eager model load failed")]
    assert len(refusals) == 2  # at init and again after the restore
    readiness = service.readiness()
    assert readiness["ready"] is False and "sha256" in readiness["error"]
    assert sessions_under(tmp_path) == []


def test_a_baked_pack_is_verified_used_without_a_fetch_or_refused(model_store: Path, tmp_path: Path) -> None:
    baked = tmp_path / "baked"
    uri = "s3://bucket/models/ocr-ppocrv6-tiny/2"
    copy_packs(model_store, "ocr", baked)
    # No s3:// source at all: the baked copy is the only way this ref can be served.
    resolver = PackResolver(tmp_path / "store", baked=baked)
    local = resolver.materialise(parse_pack_uri(uri))
    assert local.pack_dir == baked / "ocr-ppocrv6-tiny" / "2" and local.fetch_seconds == 0

    copy_packs(model_store, "ocr", tmp_path / "bad", corrupt="ocr-ppocrv6-tiny")
    refused = PackResolver(tmp_path / "store", baked=tmp_path / "bad")
    with pytest.raises(PackVerificationError, match=r"baked into .* refused: pack file \w+\.onnx sha256"):
        refused.materialise(parse_pack_uri(uri))


def test_the_prefetch_process_starts_only_for_packs_it_would_fetch(model_store: Path, tmp_path: Path) -> None:
    uri = "s3://bucket/models/ocr-ppocrv6-tiny/2"
    eager = {"DOCFN_EAGER_LOAD": "1", "DOCFN_MODEL_URI": uri, "DOCFN_PACK_PREFETCH": "1"}
    assert prefetch.wanted(eager)
    assert not prefetch.wanted({k: v for k, v in eager.items() if k != "DOCFN_PACK_PREFETCH"})  # opt-in
    assert not prefetch.wanted({**eager, "DOCFN_EAGER_LOAD": "0"})  # packs load on first use
    assert not prefetch.wanted({**eager, "DOCFN_PACK_PREFETCH": "false"})
    assert not prefetch.wanted({**eager, "DOCFN_MODEL_URI": str(tmp_path)})  # a local pack
    copy_packs(model_store, "ocr", tmp_path / "baked")
    assert not prefetch.wanted({**eager, "DOCFN_BAKED_PACKS": str(tmp_path / "baked")})
    assert prefetch.wanted({**eager, "DOCFN_BAKED_PACKS": str(tmp_path / "empty")})
