"""PDF text layers (``mode=auto|txt|ocr``) on real PDFs: groff-typeset pages, a scanned devset page,
garbage text layers (shifted and private-use ToUnicode maps) and code drawn as an image."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw
import pytest

from docfn.adapters.wiring import build_service
from docfn.core import hyphens
from docfn.core.documents import DecodeLimits, Document
from docfn.core.errors import BadOptions, EncryptedPdf
from docfn.core.geometry import intersection
from docfn.core.settings import Settings
from docfn.core.textmetrics import cer
from docfn.service.service import DocService
from docfn_testkit import pdfgen

TITLE = "A Born Digital Page"
TRUTH = [TITLE, *pdfgen.BORN_DIGITAL_LINES]
CODE = ["server = example.org", "port = 8080 # default"]


@pytest.fixture(scope="module")
def service(model_store: Path) -> DocService:
    return build_service(Settings(tasks=["ocr", "parse"], model_store=model_store))


@pytest.fixture(scope="module")
def born_digital() -> bytes:
    return pdfgen.groff_pdf(pdfgen.BORN_DIGITAL_LINES, title=TITLE)


@pytest.fixture(scope="module")
def mixed_document(born_digital: bytes, devset: Path) -> bytes:
    """Five pages, one per path auto must choose: born-digital, scanned, a shifted ToUnicode map,
    a private-use ToUnicode map, and a text caption above code drawn as an image."""
    return pdfgen.joined(
        [
            born_digital,
            pdfgen.scanned_pdf(devset / "003.png"),
            pdfgen.with_tounicode(born_digital, pdfgen.shifted_letters()),
            pdfgen.with_tounicode(born_digital, pdfgen.private_use()),
            pdfgen.text_beside_image_pdf("Listing 1: the configuration file", CODE),
        ]
    )


def _ocr(service: DocService, data: bytes, **options: str) -> dict:
    return service.run("ocr", data, "application/pdf", options).result


def test_txt_mode_returns_the_text_layer_exactly(service: DocService, born_digital: bytes) -> None:
    page = _ocr(service, born_digital, mode="txt")["pages"][0]
    assert page["text_source"] == "txt"
    assert [line["text"] for line in page["lines"]] == TRUTH
    assert all(line["confidence"] == 1.0 for line in page["lines"])


def _matching_boxes(txt_lines: list[dict], ocr_lines: list[dict]) -> None:
    """Every text-layer line's box overlaps the OCR line that reads the same words."""
    for line in txt_lines:
        partner = min(ocr_lines, key=lambda o: cer(o["text"], line["text"]))
        assert cer(partner["text"], line["text"]) < 0.1, (line, partner)
        overlap = intersection(tuple(line["bbox"]), tuple(partner["bbox"]))
        smaller = min(
            (b[2] - b[0]) * (b[3] - b[1]) for b in (line["bbox"], partner["bbox"])
        )  # boxes differ in margins, not in place
        assert overlap / smaller > 0.6, (line, partner)


def test_text_layer_boxes_are_where_the_page_image_shows_the_text(
    service: DocService, born_digital: bytes
) -> None:
    txt = _ocr(service, born_digital, mode="txt")["pages"][0]
    ocr = _ocr(service, born_digital, mode="ocr")["pages"][0]
    assert (txt["width"], txt["height"]) == (ocr["width"], ocr["height"])
    _matching_boxes(txt["lines"], ocr["lines"])


def test_boxes_follow_a_rotated_page(service: DocService, born_digital: bytes) -> None:
    document = pdfium.PdfDocument(born_digital)
    document[0].set_rotation(90)
    buffer = io.BytesIO()
    document.save(buffer)
    document.close()
    rotated = buffer.getvalue()
    txt = _ocr(service, rotated, mode="txt")["pages"][0]
    assert txt["width"] > txt["height"]  # rendered sideways
    assert sorted(line["text"] for line in txt["lines"]) == sorted(TRUTH)
    ocr = _ocr(service, rotated, mode="ocr")["pages"][0]
    for line in txt["lines"]:  # sideways lines: the boxes are tall, as OCR's are
        assert line["bbox"][3] - line["bbox"][1] > line["bbox"][2] - line["bbox"][0]
    assert ocr["lines"]


def test_auto_picks_the_right_source_per_page(
    service: DocService, mixed_document: bytes, devset: Path
) -> None:
    pages = _ocr(service, mixed_document)["pages"]
    assert [p["text_source"] for p in pages] == ["txt", "ocr", "ocr", "ocr", "txt+ocr"]
    assert [line["text"] for line in pages[0]["lines"]] == TRUTH
    assert "no text layer" in pages[1]["text_source_reason"]
    assert cer(pages[1]["text"], (devset / "003.txt").read_text()) < 0.05
    assert "disagrees with the page image" in pages[2]["text_source_reason"]
    assert "ToUnicode" in pages[3]["text_source_reason"]
    for garbage in pages[2:4]:  # read from the pixels instead: the real words
        assert cer(garbage["text"], "\n".join(TRUTH)) < 0.05
    drawn = pages[4]
    assert drawn["lines"][0]["text"] == "Listing 1: the configuration file"
    assert drawn["lines"][0]["confidence"] == 1.0  # from the layer
    assert cer(drawn["text"], "\n".join(["Listing 1: the configuration file", *CODE])) < 0.1


def test_txt_mode_takes_the_layer_unchecked(service: DocService, mixed_document: bytes) -> None:
    pages = _ocr(service, mixed_document, mode="txt")["pages"]
    assert {p["text_source"] for p in pages} == {"txt"}
    assert pages[1]["lines"] == []  # the scan has no layer
    assert pages[2]["lines"][0]["text"] == "B Cpso Ejhjubm Qbhf"  # the shifted map, as written


def test_ocr_mode_never_reads_the_layer(service: DocService, mixed_document: bytes) -> None:
    pages = _ocr(service, mixed_document, mode="ocr", pages="1,3")["pages"]
    assert [p["text_source"] for p in pages] == ["ocr", "ocr"]
    assert all(line["confidence"] < 1.0 for p in pages for line in p["lines"])


def test_images_are_read_by_ocr_and_txt_needs_a_pdf(service: DocService, devset: Path) -> None:
    data = (devset / "008.png").read_bytes()
    page = service.run("ocr", data, "image/png").result["pages"][0]
    assert page["text_source"] == "ocr"
    with pytest.raises(BadOptions, match="mode=txt"):
        service.run("ocr", data, "image/png", {"mode": "txt"})


@pytest.mark.parametrize("task", ["ocr", "parse"])
def test_mode_is_validated_like_every_option(service: DocService, task: str) -> None:
    assert service.validate_options(task, {"mode": "txt"}).mode == "txt"  # type: ignore[attr-defined]
    with pytest.raises(BadOptions, match="mode"):
        service.validate_options(task, {"mode": "pixels"})


def test_text_layer_is_read_only_when_asked(born_digital: bytes) -> None:
    document = Document(born_digital, "pdf", DecodeLimits(max_pixels=60_000_000, max_pages=10))
    try:
        assert document.render(0).text_layer is None
        layer = document.render(0, text_layer=True).text_layer
    finally:
        document.close()
    assert layer is not None and layer.suspect_chars == 0 and layer.image_coverage == 0.0
    assert [line.text for line in layer.lines] == TRUTH


def test_pdf_pages_render_to_pdfiums_own_pixels(mixed_document: bytes) -> None:
    """A page comes straight from pdfium's RGB bitmap: the same pixels as pdfium's render through
    Pillow's conversion (scans, text and drawn images alike), as an array of its own."""
    limits = DecodeLimits(max_pixels=60_000_000, max_pages=10)
    document, pdf = Document(mixed_document, "pdf", limits), pdfium.PdfDocument(mixed_document)
    try:
        for index in range(len(pdf)):
            page = document.render(index)
            expected = np.asarray(pdf[index].render(scale=limits.pdf_dpi / 72).to_pil().convert("RGB"))
            assert page.image.dtype == np.uint8 and page.image.flags.c_contiguous and page.image.flags.owndata
            assert np.array_equal(page.image, expected)
    finally:
        document.close()
        pdf.close()


def test_parse_uses_the_text_layer(service: DocService, mixed_document: bytes) -> None:
    result = service.run("parse", mixed_document, "application/pdf", {"pages": "1-3"}).result
    assert [p["text_source"] for p in result["pages"]] == ["txt", "ocr", "ocr"]
    first = [b for b in result["content_list"] if b["page_idx"] == 0]
    text = "\n".join(b.get("text", "") for b in first)
    for line in pdfgen.BORN_DIGITAL_LINES:
        assert line in text


def test_pdfium_marks_both_kinds_of_line_end_hyphen_alike() -> None:
    """Why the layer decides from the page's words: pdfium reports a compound's own hyphen at a line
    end ("well-") and groff's word breaks ("estab-") as the same U+0002 (groff draws one glyph)."""
    document = pdfium.PdfDocument(pdfgen.groff_ms_pdf(pdfgen.HYPHENS_SOURCE))
    try:
        textpage = document[0].get_textpage()
        codes = [pdfium_raw.FPDFText_GetUnicode(textpage, i) for i in range(textpage.count_chars())]
        textpage.close()
    finally:
        document.close()
    text = "".join(map(chr, codes))
    assert "well\x02known" in text and "estab\x02lishment" in text


def test_line_end_hyphens_as_printed(service: DocService) -> None:
    """Soft breaks are marked U+00AD in the layer's lines and dropped at the join; the printed hyphen
    of "well-known" at a line end stays, in the ocr task's lines and parse's paragraphs alike."""
    pdf = pdfgen.groff_ms_pdf(pdfgen.HYPHENS_SOURCE)
    lines = [line["text"] for line in _ocr(service, pdf, mode="txt")["pages"][0]["lines"]]
    assert lines[:6] == [
        "Paragraphs",
        "about a well-",
        "known method.",
        "The estab\u00ad",
        "lishment of inter\u00ad",
        "nationalization.",
    ]
    for mode in ("txt", "auto"):
        result = service.run("parse", pdf, "application/pdf", {"mode": mode}).result
        assert result["pages"][0]["text_source"] == "txt"
        # The layout model may box the narrow paragraphs as one region: compare the words in order.
        text = " ".join(b.get("text", "") for b in result["content_list"])
        assert text == " ".join(pdfgen.HYPHENS_PARAGRAPHS), mode


def test_a_layer_of_replacement_characters_is_ocrd_and_says_so(
    service: DocService, born_digital: bytes
) -> None:
    """A text layer that decodes to nothing but U+FFFD: auto reads the page by OCR and says why in
    text_source_reason, for ocr and parse alike; mode=txt still returns the layer as it is."""
    garbage = pdfgen.with_tounicode(born_digital, pdfgen.replacement_characters())
    page = _ocr(service, garbage)["pages"][0]
    assert page["text_source"] == "ocr" and "replacement (U+FFFD)" in page["text_source_reason"]
    assert cer("\n".join(TRUTH), "\n".join(line["text"] for line in page["lines"])) < 0.1
    assert all(
        set(line["text"]) <= {"\ufffd", " "}
        for line in _ocr(service, garbage, mode="txt")["pages"][0]["lines"]
    )
    parsed = service.run("parse", garbage, "application/pdf").result
    assert parsed["pages"][0]["text_source"] == "ocr"
    assert "U+FFFD" in parsed["pages"][0]["text_source_reason"] and "\ufffd" not in parsed["markdown"]


@pytest.mark.parametrize("task", ["ocr", "parse"])
def test_an_encrypted_pdf_is_a_400_that_names_the_reason(
    service: DocService, born_digital: bytes, task: str
) -> None:
    with pytest.raises(EncryptedPdf) as raised:
        service.run(task, pdfgen.encrypted(born_digital), "application/pdf")
    assert (raised.value.status, raised.value.code) == (400, "encrypted_pdf")
    assert "password" in raised.value.message


@pytest.mark.parametrize(
    ("lines", "resolved"),
    [
        (["infra\x02", "structure"], ["infra\u00ad", "structure"]),  # a break: soft
        (["a well\x02", "known rule, well-known"], ["a well-", "known rule, well-known"]),  # spelt so
        (["state-of\x02", "the-art"], ["state-of-", "the-art"]),  # already a compound
        (["COVID\x02", "19 cases"], ["COVID-", "19 cases"]),  # no break before a digit
        (["last\x02"], ["last-"]),  # nothing follows to join
        (["soft\u00adly mid-line"], ["softly mid-line"]),  # a soft hyphen inside a line: not printed
    ],
)
def test_line_end_hyphens_are_resolved_from_the_page(lines: list[str], resolved: list[str]) -> None:
    assert hyphens.resolved(lines) == resolved
