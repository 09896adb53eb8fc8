"""mode=auto trusts a PDF's text layer only when it earns it, on committed real PDFs of each kind
(tests/data/text_layers, made by scripts/make_text_layer_fixtures; SOURCES.md): a groff-typeset
page, a searchable scan from tesseract's PDF output (an image under invisible OCR text), ToUnicode
maps wrong for every font or for one, and a mixed PDF (born-digital, scanned, and a typeset page
with a scanned clipping pasted in with its OCR layer). Each page goes to the right source and
``text_source_reason`` says why."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pypdfium2 as pdfium
import pytest

from docfn.adapters.wiring import build_service
from docfn.core.documents import DecodeLimits, Document
from docfn.core.settings import Settings
from docfn.core.text_layer import TextLayer, read_text_layer
from docfn.core.textmetrics import cer
from docfn.service.service import DocService
from docfn.tasks.ocr.text_source import read_page_text
from docfn_testkit.paths import DEVSET, TEXT_LAYERS

CODE_LINES = ["Example { 1 2 3 4 } DEFINITIONS ::= BEGIN", "END"]


@pytest.fixture(scope="module")
def service(model_store: Path) -> DocService:
    return build_service(Settings(tasks=["ocr", "parse"], model_store=model_store))


@pytest.fixture(scope="module")
def run(service: DocService):  # type: ignore[no-untyped-def]
    """``ocr`` on a fixture, each (file, mode) run once for the module."""

    @cache
    def ocr(name: str, mode: str = "auto") -> tuple[dict, ...]:
        data = (TEXT_LAYERS / name).read_bytes()
        return tuple(service.run("ocr", data, "application/pdf", {"mode": mode}).result["pages"])

    return ocr


def _layer(name: str, index: int = 0) -> TextLayer:
    document = pdfium.PdfDocument(TEXT_LAYERS / name)
    try:
        return read_text_layer(document[index], (1241, 1754))
    finally:
        document.close()


def _lines(page: dict) -> list[str]:
    return [line["text"] for line in page["lines"]]


def test_the_layer_says_which_lines_are_invisible_and_in_which_font() -> None:
    scan = _layer("searchable_scan.pdf")
    assert scan.lines and all(line.invisible for line in scan.lines)
    assert {line.font for line in scan.lines} == {"GlyphLessFont"} and scan.image_coverage == 1.0
    typeset = _layer("born_digital.pdf")
    assert not any(line.invisible for line in typeset.lines)
    assert {line.font for line in typeset.lines} == {"Times-Bold", "Times-Roman", "Courier"}
    pasted = _layer("mixed.pdf", 2)
    assert [line.invisible for line in pasted.lines] == [False] * 3 + [True] * 4


def test_a_born_digital_page_takes_its_layer(run) -> None:  # type: ignore[no-untyped-def]
    (page,) = run("born_digital.pdf")
    assert page["text_source"] == "txt"
    assert page["text_source_reason"].startswith("the text layer checks out against the page image (CER 0.0")
    assert _lines(page) == _lines(run("born_digital.pdf", "txt")[0])
    assert all(line["confidence"] == 1.0 for line in page["lines"])


def test_a_searchable_scan_is_read_by_ocr_not_from_its_invisible_layer(run) -> None:  # type: ignore[no-untyped-def]
    (page,) = run("searchable_scan.pdf")
    assert page["text_source"] == "ocr"
    assert "searchable scan" in page["text_source_reason"]
    assert "invisible text (render mode 3)" in page["text_source_reason"]
    assert all(line["confidence"] < 1.0 for line in page["lines"])  # docfn's own OCR
    assert cer(page["text"], (DEVSET / "008.txt").read_text()) < 0.1
    scanner = run("searchable_scan.pdf", "txt")[0]  # mode=txt still returns the scanner's layer
    assert scanner["text_source"] == "txt" and all(line["confidence"] == 1.0 for line in scanner["lines"])


def test_a_wrong_tounicode_map_is_caught_and_the_page_read_by_ocr(run) -> None:  # type: ignore[no-untyped-def]
    """Every vowel named as the next one: a third of the letters wrong, the rest right."""
    (page,) = run("wrong_tounicode.pdf")
    assert page["text_source"] == "ocr"
    assert "disagrees with the page image" in page["text_source_reason"]
    assert "Times-Roman" in page["text_source_reason"]
    assert run("wrong_tounicode.pdf", "txt")[0]["lines"][0]["text"] == "1. Nemong thi ilimints"
    truth = run("born_digital.pdf", "txt")[0]["text"]
    assert cer(page["text"], truth) < 0.05


def test_a_wrong_map_in_one_font_rereads_only_that_fonts_lines(run) -> None:  # type: ignore[no-untyped-def]
    """Courier's map is wrong, Times' are right: the Times lines stay the layer's own, exactly; the
    code lines are read by OCR at the layer's boxes."""
    (page,) = run("wrong_tounicode_code_font.pdf")
    assert page["text_source"] == "txt+ocr"
    assert "in Courier read by OCR at their boxes" in page["text_source_reason"]
    truth = _lines(run("born_digital.pdf", "txt")[0])
    exact = [line["text"] for line in page["lines"] if line["confidence"] == 1.0]
    assert exact == [line for line in truth if not any(code in line for code in ("::=", "END"))]
    reread = [line["text"] for line in page["lines"] if line["confidence"] < 1.0]
    assert len(reread) == 4 and "DEFINITIONS" in reread[0] and "DIFONOTOUNS" not in page["text"]
    assert cer(reread[0], CODE_LINES[0]) < 0.15 and reread[-1] == CODE_LINES[-1]


def test_a_mixed_pdf_goes_page_by_page_and_region_by_region(run) -> None:  # type: ignore[no-untyped-def]
    typeset, scanned, pasted = run("mixed.pdf")
    assert [p["text_source"] for p in (typeset, scanned, pasted)] == ["txt", "ocr", "txt+ocr"]
    assert _lines(typeset) == _lines(run("born_digital.pdf", "txt")[0])
    assert "searchable scan" in scanned["text_source_reason"]
    # The pasted page: its typeset lines from the layer, the clipping from its pixels (tesseract's
    # invisible layer over it read LaTeX's logo as "IXTEX" and is set aside).
    reason = pasted["text_source_reason"]
    assert "4 invisible line(s) over images" in reason and "drawn as images" in reason
    own = [line["text"] for line in pasted["lines"] if line["confidence"] == 1.0]
    assert own[0] == "1. A page with a pasted clipping" and len(own) == 3
    read = "\n".join(line["text"] for line in pasted["lines"] if line["confidence"] < 1.0)
    assert (
        cer(
            read,
            "3 Our solution\nSince the plain solution can not be used with LATEX, we have to"
            " redefine it\nand make it possible to configure it for personal preferences.",
        )
        < 0.1
    )
    assert "IXTEX" in run("mixed.pdf", "txt")[2]["text"] and "IXTEX" not in pasted["text"]


def test_parse_decides_and_says_why_alike(service: DocService) -> None:
    data = (TEXT_LAYERS / "mixed.pdf").read_bytes()
    result = service.run("parse", data, "application/pdf").result
    pages = result["pages"]
    assert [p["text_source"] for p in pages] == ["txt", "ocr", "txt+ocr"]
    assert "searchable scan" in pages[1]["text_source_reason"]
    assert "personal preferences" in result["markdown"] and "IXTEX" not in result["markdown"]


class _Counted:
    """A model stage that counts its calls and the widths of what it was given (and, for the
    recogniser, the widths of the tensors it ran on)."""

    def __init__(self, stage: Any) -> None:
        self.stage = stage
        # One record a call, appended at once: the crops are read in parallel on the compute pool,
        # and two lists appended one after the other could pair one crop's shape with another's
        # tensor. (width, height, tensor width or None)
        self.calls: list[tuple[int, int, int | None]] = []

    @property
    def shapes(self) -> list[tuple[int, int]]:
        return [(width, height) for width, height, _ in self.calls]

    @property
    def widths(self) -> list[int]:
        return [width for width, _, _ in self.calls]

    @property
    def tensor_widths(self) -> list[int]:
        return [tensor for _, _, tensor in self.calls if tensor is not None]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stage, name)

    def __call__(self, image: Any, *args: Any, **kwargs: Any) -> Any:
        tensor = None
        if hasattr(self.stage, "prepare") and hasattr(self.stage, "height"):
            tensor = int(self.stage.prepare(image, *args, **kwargs).shape[3])
        self.calls.append((int(image.shape[1]), int(image.shape[0]), tensor))
        return self.stage(image, *args, **kwargs)


def test_a_born_digital_page_costs_no_detector_run_and_a_few_short_crops(
    service: DocService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check reads only sampled runs of words at the layer's own boxes: a page without images
    runs no text detector, and the recogniser sees 6 crops, each narrower than its line."""
    task = service.loaded("ocr")[0]
    engine = task.engine  # type: ignore[attr-defined]
    detector, recognizer = _Counted(engine.detector), _Counted(engine.recognizer)
    monkeypatch.setattr(engine, "detector", detector)
    monkeypatch.setattr(engine, "recognizer", recognizer)
    document = Document((TEXT_LAYERS / "born_digital.pdf").read_bytes(), "pdf", DecodeLimits(10_000_000, 1))
    try:  # the task itself: the service's result cache would answer an earlier test's run
        rendered = document.render(0, text_layer=True)
    finally:
        document.close()
    page = task.predict_page(rendered, service.validate_options("ocr", {"mode": "auto"}))
    assert page["text_source"] == "txt"
    assert detector.widths == []
    assert len(recognizer.widths) == 6  # two lines of each of its three fonts
    assert max(recognizer.widths) < 0.5 * max(
        line.bbox[2] - line.bbox[0] for line in _layer("born_digital.pdf").lines
    )
    # Each run of words is read at its own width: not padded to the recogniser's 320 px floor,
    # and no tail, the width a crop of that size scales to at the recogniser's height.
    own = engine.recognizer.height
    assert min(recognizer.tensor_widths) < engine.recognizer.pad_to
    assert recognizer.tensor_widths == [
        int(np.ceil(own * crop_width / crop_height)) for crop_width, crop_height in recognizer.shapes
    ]


@pytest.mark.parametrize(
    ("name", "index", "left_out"),
    [("wrong_tounicode_code_font.pdf", 0, "DIFONOTOUNS"), ("mixed.pdf", 2, "IXTEX,")],
)
def test_tables_take_words_only_from_the_lines_kept(
    service: DocService, name: str, index: int, left_out: str
) -> None:
    """A table's cells take the layer's words (parse); only those of the lines the check kept: not a
    font whose map is wrong, not a scanner's invisible layer."""
    engine = service.loaded("ocr")[0].engine  # type: ignore[attr-defined]
    document = Document((TEXT_LAYERS / name).read_bytes(), "pdf", DecodeLimits(10_000_000, 3))
    try:
        page = document.render(index, text_layer=True)
    finally:
        document.close()
    assert page.text_layer is not None
    assert left_out in {word.text for line in page.text_layer.lines for word in line.words}
    text = read_page_text(page, "auto", engine, lambda: [])
    assert text.source == "txt+ocr" and text.layer_words
    assert left_out not in {word.text for word in text.layer_words}
    assert read_page_text(page, "ocr", engine, lambda: []).layer_words is None
