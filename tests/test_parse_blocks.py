"""parse's blocks on real pages: code (boxed listings, indented examples), lists, headings, the
words inside figures; and parse keeps every word plain OCR reads (content list vs ocr, char F1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from docfn.adapters.wiring import build_service
from docfn.core.settings import Settings
from docfn.core.textmetrics import char_f1, dehyphenated
from docfn.service.service import DocService
from docfn_testkit import pdfgen
from docfn_testkit.markdown import rendered


@pytest.fixture(scope="module")
def service(model_store: Path) -> DocService:
    return build_service(Settings(tasks=["parse", "ocr"], model_store=model_store))


@pytest.fixture(scope="module")
def manual(service: DocService) -> dict[str, Any]:
    pdf = pdfgen.groff_ms_pdf(pdfgen.MANUAL_SOURCE)
    return service.run("parse", pdf, "application/pdf").result


def test_manual_page_has_its_heading_code_and_list(manual: dict[str, Any]) -> None:
    blocks = manual["content_list"]
    assert manual["pages"][0]["text_source"] == "txt"
    headings = [b for b in blocks if b.get("text_level")]
    assert [(b["text"], b["text_level"]) for b in headings] == [("1. Naming the elements", 1)]
    code = [b for b in blocks if b["type"] == "code"]
    assert [b["code_body"].splitlines() for b in code] == [pdfgen.MANUAL_CODE]
    lists = [b for b in blocks if b["type"] == "list"]
    assert [b["list_items"] for b in lists] == [[f"• {item}" for item in pdfgen.MANUAL_ITEMS]]
    texts = [b["text"] for b in blocks if b["type"] in {"text", "ref_text"} and not b.get("text_level")]
    assert "The library supports these types:" in texts


def test_manual_page_markdown(manual: dict[str, Any]) -> None:
    md = manual["markdown"]
    assert md.startswith("# 1. Naming the elements\n")
    assert "```\n" + "\n".join(pdfgen.MANUAL_CODE) + "\n```" in md
    assert "\n".join(f"- {item}" for item in pdfgen.MANUAL_ITEMS) in md
    assert md.index("Consider this definition:") < md.index("```") < md.index("The library supports")


def _kept_text(blocks: list[dict[str, Any]]) -> str:
    """Every word of a content list (page furniture included)."""
    parts = []
    for block in blocks:
        parts += [str(block.get(key) or "") for key in ("text", "code_body", "image_text")]
        parts += block.get("list_items", []) + block.get("image_caption", [])
    return "\n".join(parts)


@pytest.mark.parametrize("page", ["006", "007", "010"])
def test_parse_keeps_what_ocr_reads(service: DocService, devset: Path, page: str) -> None:
    """Code boxes the layout model calls figures (006, 007) and a diagram (010) lose no words."""
    data = (devset / f"{page}.png").read_bytes()
    truth = (devset / f"{page}.txt").read_text(encoding="utf-8")
    parsed = service.run("parse", data, "image/png").result
    ocr = service.run("ocr", data, "image/png").result
    truth = dehyphenated(truth)
    assert char_f1(_kept_text(parsed["content_list"]), truth) >= char_f1(dehyphenated(ocr["text"]), truth)


def test_boxed_code_listings_are_code_blocks(service: DocService, devset: Path) -> None:
    blocks = service.run("parse", (devset / "006.png").read_bytes(), "image/png").result["content_list"]
    code = "\n".join(b["code_body"] for b in blocks if b["type"] == "code")
    for line in ("\\begingroup", "\\endgroup", "\\zhlipsum"):
        assert line in code.replace("+endgroup", "\\endgroup")


def test_figure_keeps_its_words_in_a_markdown_comment(service: DocService, devset: Path) -> None:
    result = service.run("parse", (devset / "010.png").read_bytes(), "image/png").result
    figure = next(b for b in result["content_list"] if b["type"] == "image")
    assert "Exponent" in figure["image_text"]
    # In the Markdown's source (search, chunks, language models read it), not in its rendering.
    assert f"<!-- figure text: {' '.join(figure['image_text'].split())} -->" in result["markdown"]
    assert "Exponent" not in rendered(result["markdown"])
