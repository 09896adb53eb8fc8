"""The task contract as every entry point sees it: one options model per task (pages included),
validated the same way for HTTP, the CLI and upload jobs; packs resolved where the function runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from docfn.adapters.wiring import build_service, upload_processor
from docfn.core.errors import BadOptions, NotFound, PackNotConfigured
from docfn.core.settings import Settings
from docfn_testkit.cli import run_docfn
from docfn_testkit.paths import SAMPLE_PAGE


@pytest.fixture(scope="module")
def service(model_store: Path):  # type: ignore[no-untyped-def]
    return build_service(Settings(tasks=["ocr", "parse"], model_store=model_store))


@pytest.mark.parametrize(
    ("task", "options", "message"),
    [
        ("ocr", {"pages": "banana"}, "bad page range 'banana'"),
        ("ocr", {"pages": "3-1"}, "ranges ascend"),
        ("ocr", {"min_confidence": "2"}, "option min_confidence"),
        ("ocr", {"angle_cls": "maybe"}, "option angle_cls"),
        ("ocr", {"colour": "blue"}, "unknown option(s) ['colour'] for task ocr"),
        ("parse", {"ocr_mode": "sideways"}, "option ocr_mode"),
        ("parse", {"formula": "mathpix"}, "option formula"),
        ("table", {"recognizer": "mathpix"}, "option recognizer"),
        ("parse", {"vlm_blocks": "formula,title"}, "option vlm_blocks"),
    ],
)
def test_options_are_refused_alike_for_served_and_unserved_tasks(
    service, task: str, options: dict[str, str], message: str
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadOptions) as caught:
        service.validate_options(task, options)
    assert message in caught.value.message


def test_upload_refuses_bad_options_before_anything_is_stored(service) -> None:  # type: ignore[no-untyped-def]
    # No bucket at all: validation must come first, so the job cannot fail later on "banana".
    jobs = upload_processor(service)
    with pytest.raises(BadOptions, match="bad page range"):
        jobs.create_upload("ocr", "scan.pdf", "application/pdf", {"pages": "banana"})
    with pytest.raises(BadOptions, match="unknown option"):
        jobs.create_upload("table", "scan.png", None, {"colour": "blue"})
    with pytest.raises(NotFound, match="unknown task"):
        jobs.create_upload("translate", "scan.png", None, {})


def test_valid_options_reach_the_task_and_the_cache_key(service) -> None:  # type: ignore[no-untyped-def]
    data = SAMPLE_PAGE.read_bytes()
    strict = service.run("ocr", data, "image/png", {"min_confidence": "0.99", "pages": "1"})
    loose = service.run("ocr", data, "image/png", {"min_confidence": "0.1"})
    assert strict.cache_key != loose.cache_key
    assert len(strict.result["pages"][0]["lines"]) < len(loose.result["pages"][0]["lines"])
    # "1" and "no pages given" select the same single page: one cache entry, not two.
    again = service.run("ocr", data, "image/png", {"min_confidence": "0.1", "pages": "1"})
    assert again.cached and again.cache_key == loose.cache_key


def test_cli_refuses_bad_options_the_same_way(model_store: Path) -> None:
    result = run_docfn(
        "run",
        "ocr",
        SAMPLE_PAGE,
        "-o",
        "colour=blue",
        env={"DOCFN_MODEL_STORE": str(model_store)},
        clean=True,
    )
    assert result.returncode == 1
    assert "unknown option(s) ['colour'] for task ocr" in result.stderr and "(bad_options)" in result.stderr


def test_deployed_function_never_builds_a_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Knative (K_SERVICE) or Lambda a missing pack fails at once, naming the variable to set."""
    monkeypatch.setenv("K_SERVICE", "docfn-parse")
    settings = Settings(tasks=["parse"], model_store=tmp_path / "empty-store")
    assert settings.build_packs is False
    service = build_service(settings)
    with pytest.raises(PackNotConfigured) as caught:
        service.run("parse", SAMPLE_PAGE.read_bytes(), "image/png")
    assert caught.value.status == 503  # SPEC: an unconfigured pack answers 503 saying how to publish one
    assert "DOCFN_MODEL_URI=s3://BUCKET/models/layout-cdla/2" in caught.value.message
    assert "docfn models publish" in caught.value.message
    assert not (tmp_path / "empty-store" / "_wheels").exists()  # nothing was downloaded
    # It stays in rotation (a 503 with the message reaches callers) and readiness says why.
    readiness = service.readiness()
    assert readiness["ready"] is True and "DOCFN_MODEL_URI" in readiness["tasks"]["parse"]["error"]


def test_parse_names_its_ocr_pack_variable(model_store: Path, tmp_path: Path) -> None:
    """The layout pack is configured, the OCR pack is not: the error names DOCFN_OCR_MODEL_URI."""
    layout = model_store / "layout-cdla" / "2"
    settings = Settings(tasks=["parse"], model_store=tmp_path, model_uri=str(layout), build_packs=False)
    with pytest.raises(
        PackNotConfigured, match="set DOCFN_OCR_MODEL_URI=s3://BUCKET/models/ocr-ppocrv6-tiny/2"
    ):
        build_service(settings).run("parse", SAMPLE_PAGE.read_bytes(), "image/png")


def test_table_names_each_secondary_pack_variable(model_store: Path, tmp_path: Path) -> None:
    """table's OCR pack is configured, its layout pack is not, then SLANet is not: each error names
    the variable of the missing role."""
    ocr = str(model_store / "ocr-ppocrv6-tiny" / "2")
    base = {"tasks": ["table"], "model_store": tmp_path, "model_uri": ocr, "build_packs": False}
    with pytest.raises(
        PackNotConfigured, match="set DOCFN_LAYOUT_MODEL_URI=s3://BUCKET/models/layout-cdla/2"
    ):
        build_service(Settings(**base)).run("table", SAMPLE_PAGE.read_bytes(), "image/png")
    layout = str(model_store / "layout-cdla" / "2")
    with pytest.raises(
        PackNotConfigured, match="set DOCFN_TABLE_STRUCTURE_MODEL_URI=s3://BUCKET/models/table-slanet-plus/1"
    ):
        build_service(Settings(**base, layout_model_uri=layout)).run(
            "table", SAMPLE_PAGE.read_bytes(), "image/png"
        )


def test_lambda_environment_disables_building(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("K_SERVICE", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "docfn-ocr")
    assert Settings().build_packs is False
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    assert Settings().build_packs is True
