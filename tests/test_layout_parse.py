"""layout, table and parse on real pages with the real models: generated pages with known
contents (two columns, a ruled table, a multi-page PDF) and devset pages (English with a table,
Chinese, the "table" category page)."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from docfn.adapters.wiring import build_service
from docfn.core.errors import BadOptions, PayloadTooLarge
from docfn.core.settings import Settings
from docfn.core.textmetrics import char_f1, normalise
from docfn.service.service import DocService
from docfn.tasks.layout.detector import LayoutDetector
from docfn.tasks.ocr.recognize import TextRecognizer
from docfn.tasks.parse import page as page_module
from docfn_testkit import docgen
from docfn_testkit.markdown import rendered
from docfn_testkit.tablegen import SAMPLE_TABLES, Style, slots, table_pdf

LEFT = [
    "Solar panels convert sunlight into electricity using photovoltaic cells made of silicon."
    " The efficiency of modern panels has improved steadily over the last decade.",
    "Installation costs have fallen sharply, which makes rooftop systems attractive for many"
    " households in sunny regions.",
]
RIGHT = [
    "Wind turbines capture kinetic energy from moving air and turn a generator through a gearbox."
    " Offshore farms benefit from stronger and steadier winds.",
    "Grid operators balance supply and demand with storage batteries and flexible gas plants when"
    " the wind drops.",
]
TABLE = [["Name", "Qty", "Price"], ["apple", "12", "3.50"], ["banana", "7", "1.25"], ["cherry", "40", "9.99"]]


@pytest.fixture(scope="module")
def service(model_store: Path) -> DocService:
    return build_service(Settings(tasks=["layout", "table", "parse"], model_store=model_store))


@pytest.fixture(scope="module")
def two_column_png() -> bytes:
    page = docgen.two_column_page(
        "Renewable Energy Overview", LEFT, RIGHT, header="Journal of Examples 2024", footer="7"
    )
    return docgen.png_bytes(page)


@pytest.fixture(scope="module")
def parsed_two_column(service: DocService, two_column_png: bytes) -> dict[str, Any]:
    return service.run("parse", two_column_png, "image/png").result


@pytest.fixture(scope="module")
def three_page_pdf(devset: Path) -> bytes:
    pages = [Image.open(devset / f"{name}.png").convert("RGB") for name in ("003", "005", "010")]
    return docgen.pdf_from_images(pages)


def _centre_x(region: dict[str, Any]) -> float:
    return (region["bbox"][0] + region["bbox"][2]) / 2


def test_layout_two_column_page_reads_left_column_first(service: DocService, two_column_png: bytes) -> None:
    page = service.run("layout", two_column_png, "image/png").result["pages"][0]
    regions = page["regions"]
    assert [r["order"] for r in regions] == list(range(len(regions)))
    texts = [r for r in regions if r["type"] == "text"]
    left = [r["order"] for r in texts if _centre_x(r) < page["width"] / 2]
    right = [r["order"] for r in texts if _centre_x(r) > page["width"] / 2]
    assert len(left) >= 2 and len(right) >= 2, regions
    assert max(left) < min(right), "every left-column paragraph comes before the right column"
    types = [r["type"] for r in regions]
    assert types[0] == "header" and "title" in types and types[-1] == "footer"
    assert all(0.0 < r["score"] <= 1.0 for r in regions)


def test_layout_devset_two_column_section(service: DocService, devset: Path) -> None:
    """003 (ragged2e) has a two-column block under the running header: left before right."""
    page = service.run("layout", (devset / "003.png").read_bytes(), "image/png").result["pages"][0]
    top = [r for r in page["regions"] if r["type"] == "text" and r["bbox"][1] < 300]
    assert len(top) == 2
    left, right = sorted(top, key=lambda r: r["bbox"][0])
    assert left["bbox"][2] < right["bbox"][0] and left["order"] < right["order"]
    assert {"title", "table"} <= {r["type"] for r in page["regions"]}


def test_parse_two_column_markdown_and_content_list(parsed_two_column: dict[str, Any]) -> None:
    md = parsed_two_column["markdown"]
    # The running head first, as a comment (furniture is never rendered), then the title.
    assert md.startswith("<!-- header: Journal of Examples 2024 -->\n\n# Renewable Energy Overview\n")
    for paragraph in LEFT + RIGHT:  # every paragraph whole, each one block
        assert normalise(paragraph) in {
            normalise(b.get("text", "")) for b in parsed_two_column["content_list"]
        }
    assert md.index("Installation costs") < md.index("Wind turbines") < md.index("Grid operators")
    blocks = parsed_two_column["content_list"]
    for block in blocks:
        assert block["page_idx"] == 0
        assert len(block["bbox"]) == 4 and all(0 <= v <= 1000 for v in block["bbox"])
    heading = next(b for b in blocks if b.get("text_level"))
    assert heading == {**heading, "type": "text", "text": "Renewable Energy Overview", "text_level": 1}
    # Page furniture: in the content list, and in the Markdown only as a comment (never rendered).
    header = next(b for b in blocks if b["type"] == "header")
    assert "Journal of Examples" in header["text"] and "Journal of Examples" not in rendered(md)
    assert f"<!-- header: {header['text']} -->" in md
    assert any(b["type"] == "page_number" and b["text"] == "7" for b in blocks)
    assert "images" not in parsed_two_column  # crops travel only with images=base64


def test_table_task_ruled_table_with_a_spanning_header(service: DocService) -> None:
    image = docgen.ruled_table([["Fruit prices 2024", "", ""], *TABLE], merge_header=True)
    result = service.run("table", docgen.png_bytes(image), "image/png").result
    (table,) = result["pages"][0]["tables"]
    assert (table["rows"], table["cols"], table["method"]) == (5, 3, "rulings")
    assert result["html"].count("<tr>") == 5 and result["html"].count("<td") == 13
    cells = {(c["row"], c["col"]): c for c in result["cells"]}
    assert cells[(0, 0)]["colspan"] == 3 and cells[(0, 0)]["text"] == "Fruit prices 2024"
    for r, row in enumerate(TABLE, start=1):
        assert [cells[(r, c)]["text"] for c in range(3)] == row
    assert "| Name | Qty | Price |" in result["markdown"]


def test_table_task_unruled_columns_from_alignment(service: DocService, devset: Path) -> None:
    """003's booktabs table (horizontal rules only), read by the classic method: two columns from
    how the words line up."""
    table_crop = Image.open(devset / "003.png").convert("RGB").crop((350, 1030, 1060, 1300))
    png = docgen.png_bytes(table_crop)
    (table,) = service.run("table", png, "image/png", {"recognizer": "classic"}).result["pages"][0]["tables"]
    assert table["method"] == "alignment" and table["cols"] == 2 and table["rows"] >= 7
    first = {(c["row"], c["col"]): c["text"] for c in table["cells"]}
    assert first[(0, 0)] == "Command" and first[(0, 1)] == "Uses"
    assert any(text == "\\Centering" for text in first.values())


def test_parse_page_with_a_table(service: DocService, devset: Path) -> None:
    result = service.run("parse", (devset / "003.png").read_bytes(), "image/png").result
    tables = [b for b in result["content_list"] if b["type"] == "table"]
    assert len(tables) == 1
    table = tables[0]
    # Read by SLANet (no vertical rules): a row per command, each name in the first column.
    body = table["table_body"]
    assert body.startswith("<table><tr><td>Command</td><td>Uses</td></tr>")
    assert table["table_cols"] == 2 and body.count("<tr>") >= 5
    for command in ("\\Centering", "\\RaggedLeft", "\\RaggedRight"):
        assert f"<tr><td>{command}</td>" in body
    assert "img_path" not in table  # images=none: no crop travels, so no path names one
    assert "<table>" in result["markdown"] and "# 3 Our solution" in result["markdown"]
    assert "## 3.1 The macros" in result["markdown"]


def test_parse_table_category_page_keeps_its_text(service: DocService, devset: Path) -> None:
    """007 (tablor) is framed code listings the layout model calls one page-sized "figure": the
    text-density rule reads it as text instead of dropping every word."""
    result = service.run("parse", (devset / "007.png").read_bytes(), "image/png").result
    truth = (devset / "007.txt").read_text(encoding="utf-8")
    assert char_f1(result["markdown"], truth) > 0.8


def test_parse_chinese_page(service: DocService, devset: Path) -> None:
    result = service.run("parse", (devset / "005.png").read_bytes(), "image/png").result
    md = result["markdown"]
    truth = (devset / "005.txt").read_text(encoding="utf-8")
    assert char_f1(md, truth) > 0.9
    assert "如何升级" in md  # a heading's words on ctex-faq page 8
    headings = [b for b in result["content_list"] if b.get("text_level")]
    assert len(headings) >= 3 and all(line.startswith("#") for line in md.splitlines() if "如何升级" in line)
    furniture = [b for b in result["content_list"] if b["type"] in {"header", "footer", "page_number"}]
    assert furniture and all(b["text"] not in rendered(md) for b in furniture if len(b["text"]) > 3)
    assert all(b["text"] in md for b in furniture)  # kept, in comments


def test_parse_multi_page_pdf_with_page_selection(service: DocService, three_page_pdf: bytes) -> None:
    seen: list[tuple[int, int]] = []
    outcome = service.run(
        "parse",
        three_page_pdf,
        "application/pdf",
        {"pages": "1,3", "images": "base64"},
        on_page=lambda d, t: seen.append((d, t)),
    )
    result = outcome.result
    assert seen == [(1, 2), (2, 2)]
    assert [p["page_idx"] for p in result["pages"]] == [0, 2]
    page_idx = [b["page_idx"] for b in result["content_list"]]
    assert set(page_idx) == {0, 2} and page_idx == sorted(page_idx)
    figure = next(b for b in result["content_list"] if b["type"] == "image")  # bytefield's diagram
    assert figure["page_idx"] == 2 and figure["img_path"] in result["images"]
    assert figure["image_caption"], "the caption under the diagram is attached to it"
    assert f"]({figure['img_path']})" in result["markdown"]
    assert "# 3 Our solution" in result["markdown"] and "Building a bit field" not in result["markdown"][:20]


def test_parse_page_limit_and_options(model_store: Path, three_page_pdf: bytes) -> None:
    limited = build_service(Settings(tasks=["parse"], model_store=model_store, max_pages=2))
    with pytest.raises(PayloadTooLarge, match="3 pages requested but at most 2"):
        limited.run("parse", three_page_pdf, "application/pdf")
    with pytest.raises(BadOptions):
        limited.run("parse", three_page_pdf, "application/pdf", {"ocr_mode": "sideways"})
    version = limited.task("parse").version_id
    assert "layout-cdla@" in version and "ocr-ppocrv6-tiny@" in version and "table-slanet-plus@" in version


def test_cli_writes_markdown_content_list_and_images(
    model_store: Path, three_page_pdf: bytes, tmp_path: Path
) -> None:
    source = tmp_path / "doc.pdf"
    source.write_bytes(three_page_pdf)
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "docfn",
            "run",
            "parse",
            str(source),
            "--pages",
            "3",
            "--format",
            "md",
            "--out",
            str(out),
        ],
        env={"DOCFN_MODEL_STORE": str(model_store), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    md = (out / "doc.md").read_text(encoding="utf-8")
    blocks = json.loads((out / "doc.content_list.json").read_text(encoding="utf-8"))
    images = sorted((out / "doc_images").glob("*.png"))
    assert images and all(Image.open(p).size[0] > 10 for p in images)
    figure = next(b for b in blocks if b["type"] == "image")
    assert figure["img_path"].startswith("doc_images/") and (out / figure["img_path"]).is_file()
    assert f"]({figure['img_path']})" in md


def test_http_parse(docfn_server_factory, devset: Path) -> None:  # type: ignore[no-untyped-def]
    server = docfn_server_factory(DOCFN_TASKS="parse")
    with server.client() as client:
        response = client.post(
            "/v1/parse", content=(devset / "010.png").read_bytes(), headers={"content-type": "image/png"}
        )
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        assert "images" not in result and result["markdown"].strip()
        figure = next(b for b in result["content_list"] if b["type"] == "image")
        assert "img_path" not in figure  # images=none (the HTTP default): no crop, no path
        bad = client.post(
            "/v1/parse?images=inline",
            content=(devset / "010.png").read_bytes(),
            headers={"content-type": "image/png"},
        )
        assert bad.status_code == 422


class _HtmlCells(HTMLParser):
    """A table_body's cells by their anchor slot, spans placed the HTML way (as tablegen.slots)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[int, int], tuple[int, int, str]] = {}
        self._covered: set[tuple[int, int]] = set()
        self._row, self._col, self._open = -1, 0, None  # the open cell: (slot, spans, text parts)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._row, self._col = self._row + 1, 0
        elif tag == "td":
            while (self._row, self._col) in self._covered:
                self._col += 1
            spans = dict(attrs)
            rowspan, colspan = int(spans.get("rowspan") or 1), int(spans.get("colspan") or 1)
            self._open = ((self._row, self._col), (rowspan, colspan), [])
            self._covered |= {(self._row + i, self._col + j) for i in range(rowspan) for j in range(colspan)}
            self._col += colspan

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[2].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._open is not None:
            slot, (rowspan, colspan), parts = self._open
            self.cells[slot] = (rowspan, colspan, "".join(parts))
            self._open = None


def _html_cells(body: str) -> dict[tuple[int, int], tuple[int, int, str]]:
    parser = _HtmlCells()
    parser.feed(body)
    return parser.cells


@pytest.mark.parametrize(
    ("name", "style"), [("schedule", "ruled"), ("spanning", "ruled"), ("spanning", "framed")]
)
def test_born_digital_table_cells_come_from_the_text_layer(
    service: DocService, name: str, style: Style, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A groff tbl table in a born-digital PDF: with the layer trusted (mode=txt, and auto, which
    checks it first) every cell's text is the layer's exactly, structure from the rules (ruled) or
    SLANet (framed); with mode=txt nothing on the page is OCR'd, the table's cells included."""
    rows = SAMPLE_TABLES[name]
    pdf = table_pdf(rows, style, around=(LEFT[0], RIGHT[0]))
    truth = {slot: (c.rowspan, c.colspan, c.text) for slot, c in slots(rows).items()}
    recognised: list[int] = []
    real = TextRecognizer.__call__
    monkeypatch.setattr(
        TextRecognizer,
        "__call__",
        lambda self, crop, *padding: recognised.append(1) or real(self, crop, *padding),
    )
    for mode in ("txt", "auto"):
        recognised.clear()
        result = service.run("parse", pdf, "application/pdf", {"mode": mode}).result
        assert result["pages"][0]["text_source"] == "txt"
        (table,) = [b for b in result["content_list"] if b["type"] == "table"]
        assert _html_cells(table["table_body"]) == truth, mode
        if mode == "txt":
            assert not recognised


def test_a_cell_the_layer_lacks_is_ocrd_alone(service: DocService, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell whose text the layer does not hold (here: its word withheld from the recogniser, as
    for text drawn as a picture) is read by OCR; every other cell still comes from the layer."""
    rows = SAMPLE_TABLES["schedule"]
    pdf = table_pdf(rows, "ruled", around=(LEFT[0], RIGHT[0]))
    real_pieces = page_module.layer_pieces
    monkeypatch.setattr(
        page_module,
        "layer_pieces",
        lambda words, box: [p for p in real_pieces(words, box) if p.text != "Keynote"],
    )
    recognised: list[int] = []
    real = TextRecognizer.__call__
    monkeypatch.setattr(
        TextRecognizer,
        "__call__",
        lambda self, crop, *padding: recognised.append(1) or real(self, crop, *padding),
    )
    result = service.run("parse", pdf, "application/pdf", {"mode": "txt", "min_score": "0.51"}).result
    (table,) = [b for b in result["content_list"] if b["type"] == "table"]
    truth = {slot: (c.rowspan, c.colspan, c.text) for slot, c in slots(rows).items()}
    assert _html_cells(table["table_body"]) == truth
    assert len(recognised) == 1  # one piece of ink in one cell: nothing else was OCR'd


@pytest.mark.parametrize("threshold", [None, 0.3, 0.7])
def test_layout_decodes_only_candidates_above_the_threshold(
    service: DocService, devset: Path, threshold: float | None
) -> None:
    """Only the candidates that can pass the score threshold have their boxes decoded: the regions
    are those of decoding every candidate and dropping the rest (a devset page of text, figures
    and a table, at three thresholds)."""
    detector: LayoutDetector = service.loaded("layout")[0].analyzer.detector  # type: ignore[attr-defined]
    page = np.asarray(Image.open(devset / "004.png").convert("RGB"))
    outputs = detector.session.run(None, {detector.input_name: detector.preprocess(page)})
    cut = detector.config.score_threshold if threshold is None else threshold
    boxes, scores = detector.decode(outputs)
    kept = scores.max(axis=1) >= cut
    filtered_boxes, filtered_scores = detector.decode(outputs, cut)
    assert kept.sum() >= 5 and len(kept) > kept.sum()
    assert np.array_equal(filtered_boxes, boxes[kept]) and np.array_equal(filtered_scores, scores[kept])
    assert detector.regions(outputs, (page.shape[1], page.shape[0]), threshold)
