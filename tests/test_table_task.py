"""The ``table`` task with its three packs (OCR, layout, SLANet-plus): a table among text on a page is
found and read alone; a crop that is just a table still reads; over HTTP and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from docfn.adapters.wiring import build_service
from docfn.core.settings import Settings
from docfn.service.service import DocService
from docfn_testkit import docgen
from docfn_testkit.cli import run_docfn
from docfn_testkit.servers import DocfnServer
from docfn_testkit.tablegen import SAMPLE_TABLES, render_table, slots

PARAGRAPH = (
    "Solar panels convert sunlight into electricity using photovoltaic cells made of silicon."
    " The efficiency of modern panels has improved steadily over the last decade."
)
TABLE_AT = (170, 400)


@pytest.fixture(scope="module")
def service(model_store: Path) -> DocService:
    return build_service(Settings(tasks=["table"], model_store=model_store))


@pytest.fixture(scope="module")
def page_png() -> bytes:
    """A 150-dpi page: a paragraph, the ruled schedule table, another paragraph."""
    page = Image.new("RGB", (1240, 1754), "white")
    draw, font = ImageDraw.Draw(page), docgen.font(22)
    for top in (150, 900):
        for i, line in enumerate(docgen.wrap(PARAGRAPH, font, 1000)):
            draw.text((120, top + 32 * i), line, font=font, fill="black")
    page.paste(render_table(SAMPLE_TABLES["schedule"], "ruled"), TABLE_AT)
    return docgen.png_bytes(page)


def _truth(name: str) -> dict[tuple[int, int], tuple[int, int, str]]:
    return {slot: (c.rowspan, c.colspan, c.text) for slot, c in slots(SAMPLE_TABLES[name]).items()}


def _cells(table: dict[str, Any]) -> dict[tuple[int, int], tuple[int, int, str]]:
    return {(c["row"], c["col"]): (c["rowspan"], c["colspan"], c["text"]) for c in table["cells"]}


def test_a_table_among_text_is_found_and_read_alone(service: DocService, page_png: bytes) -> None:
    result = service.run("table", page_png, "image/png").result
    (table,) = result["pages"][0]["tables"]
    assert result["tables"] == 1 and table["method"] == "rulings"
    assert _cells(table) == _truth("schedule")  # no paragraph words in any cell
    x0, y0, x1, y1 = table["bbox"]
    width, height = render_table(SAMPLE_TABLES["schedule"], "ruled").size
    assert TABLE_AT[0] - 20 <= x0 and x1 <= TABLE_AT[0] + width + 20
    assert TABLE_AT[1] - 20 <= y0 and y1 <= TABLE_AT[1] + height + 20
    # Cell boxes are in page pixels, inside the table's region.
    assert all(x0 <= c["bbox"][0] and c["bbox"][2] <= x1 + 1 for c in table["cells"])
    assert '<td colspan="2">Excursion to the lake</td>' in result["html"]


def test_a_page_of_prose_has_no_table(service: DocService) -> None:
    page = docgen.two_column_page("Renewable Energy", [PARAGRAPH] * 3, [PARAGRAPH] * 3)
    result = service.run("table", docgen.png_bytes(page), "image/png").result
    assert result["tables"] == 0 and result["pages"][0]["tables"] == [] and result["markdown"] == ""


def test_a_borderless_table_crop_reads_with_slanet(service: DocService) -> None:
    """The layout model calls a borderless table crop a figure: the crop is the table."""
    image = render_table(SAMPLE_TABLES["spanning"], "borderless")
    result = service.run("table", docgen.png_bytes(image), "image/png").result
    (table,) = result["pages"][0]["tables"]
    assert table["method"] == "slanet" and _cells(table) == _truth("spanning")
    assert '<td rowspan="2">Region</td><td colspan="2">Sales 2024</td>' in result["html"]


def test_recognizer_option_picks_the_method(service: DocService) -> None:
    png = docgen.png_bytes(render_table(SAMPLE_TABLES["prices"], "ruled"))
    methods = {
        name: service.run("table", png, "image/png", {"recognizer": name}).result["pages"][0]["tables"][0][
            "method"
        ]
        for name in ("auto", "classic", "slanet")
    }
    assert methods == {"auto": "rulings", "classic": "rulings", "slanet": "slanet"}
    version = service.task("table").version_id
    assert "ocr-ppocrv6-tiny@" in version and "layout-cdla@" in version and "table-slanet-plus@" in version


def test_table_over_http(model_store: Path, page_png: bytes) -> None:
    server = DocfnServer({"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "table"}).start()
    try:
        with server.client() as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200
            response = client.post("/v1/table", content=page_png, headers={"content-type": "image/png"})
            assert response.status_code == 200, response.text
            result = response.json()["result"]
            assert result["tables"] == 1 and _cells(result["pages"][0]["tables"][0]) == _truth("schedule")
            bad = client.post(
                "/v1/table?recognizer=guess", content=page_png, headers={"content-type": "image/png"}
            )
            assert bad.status_code == 422 and "recognizer" in bad.json()["error"]["message"]
    finally:
        server.stop()


def test_table_on_the_cli(model_store: Path, page_png: bytes, tmp_path: Path) -> None:
    source = tmp_path / "page.png"
    source.write_bytes(page_png)
    env = {"DOCFN_MODEL_STORE": str(model_store)}
    command = ["run", "table", str(source)]
    markdown = run_docfn(*command, "--format", "md", env=env, clean=True)
    markdown.check_returncode()
    assert "| Day | Morning | Afternoon | Room |" in markdown.stdout
    assert "| Wednesday | Excursion to the lake |  | Bus |" in markdown.stdout
    assert "Solar panels" not in markdown.stdout
    raw = run_docfn(*command, "--format", "json", env=env, clean=True)
    raw.check_returncode()
    assert json.loads(raw.stdout)["result"]["tables"] == 1
