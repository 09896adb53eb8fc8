"""The ocr task on real devset pages: character error rate bounds and words that must be read."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from docfn.adapters.wiring import build_service
from docfn.core.settings import Settings
from docfn.core.textmetrics import cer
from docfn.service.service import DocService

# (page, CER bound, words that must appear). Bounds sit a little above what the default pack
# measures (docs/benchmarks/ocr.md), so a regression in pre/post-processing fails here.
CASES = [
    ("003", 0.03, ["RaggedRight", "justified", "Our solution"]),
    ("008", 0.02, []),
    ("005", 0.06, []),
    ("001", 0.06, []),
]


@pytest.fixture(scope="module")
def service(model_store: Path) -> DocService:
    return build_service(Settings(tasks=["ocr"], model_store=model_store))


@pytest.mark.parametrize(("page", "bound", "words"), CASES)
def test_devset_page_cer(
    service: DocService, devset: Path, page: str, bound: float, words: list[str]
) -> None:
    data = (devset / f"{page}.png").read_bytes()
    outcome = service.run("ocr", data, "image/png")
    text = outcome.result["text"]
    truth = (devset / f"{page}.txt").read_text()
    assert cer(text, truth) <= bound, text[:500]
    for word in words:
        assert word in text


def test_chinese_page_has_known_phrases(service: DocService, devset: Path) -> None:
    outcome = service.run("ocr", (devset / "004.png").read_bytes(), "image/png")
    text = outcome.result["text"]
    for phrase in ["数学公式", "参考文献", "如何生成固定宽度的表格"]:
        assert phrase in text


def test_lines_carry_polygons_confidences_and_reading_order(service: DocService, devset: Path) -> None:
    outcome = service.run("ocr", (devset / "003.png").read_bytes(), "image/png")
    page = outcome.result["pages"][0]
    assert page["page"] == 1 and (page["width"], page["height"]) == (1241, 1754)
    assert len(page["lines"]) > 20
    for line in page["lines"]:
        assert len(line["polygon"]) == 4
        assert 0.5 <= line["confidence"] <= 1.0
        x0, y0, x1, y1 = line["bbox"]
        assert 0 <= x0 < x1 <= 1241 and 0 <= y0 < y1 <= 1754
    tops = [line["bbox"][1] for line in page["lines"]]
    # Reading order runs down the page: row starts never go back up by more than a line height.
    assert all(later >= earlier - 30 for earlier, later in itertools.pairwise(tops))
    assert outcome.result["model"] == "ocr-ppocrv6-tiny@2"
