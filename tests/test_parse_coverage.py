"""Nothing OCR reads is lost by parse, and every output format carries every block kind.

With the real models: on every devset page and every generated page (``docfn_testkit.genpages``,
rendered as page images), of the letters and digits the ``ocr`` task reads, parse's Markdown lacks
at most 1 % (``textmetrics.missing_share``). And on one document holding every block kind (devset
pages with an equation, a table, running heads and a figure; generated pages with a heading, a
list, code and a table from the text layer), each CLI format (``text``, ``md``, ``json``,
``chunks``) carries the words of every block of every kind. Slow group ``coverage``: one parse and
one OCR per page.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from docfn.adapters.cli.render import render
from docfn.adapters.wiring import build_service
from docfn.core.settings import Settings
from docfn.core.textmetrics import missing_share
from docfn.service.service import DocService
from docfn_testkit import genpages, pdfgen
from docfn_testkit.paths import DEVSET

DEVSET_PAGES = sorted(p.stem for p in DEVSET.glob("*.png"))
GENERATED = {page.name: page for page in genpages.pages()}
# The block kinds a parse result can hold that the pipeline (no VLM) makes, headings apart.
KINDS = ("heading", "text", "list", "code", "table", "image", "equation", "header", "page_number")
FORMATS = ("text", "md", "json", "chunks")


@pytest.fixture(scope="module")
def service(model_store: Path) -> DocService:
    return build_service(Settings(tasks=["ocr", "parse"], model_store=model_store))


def _page_png(name: str) -> bytes:
    if name in GENERATED:
        return genpages.page_png(GENERATED[name].pdf)
    return (DEVSET / f"{name}.png").read_bytes()


@pytest.mark.parametrize("name", DEVSET_PAGES + list(GENERATED))
def test_parse_markdown_keeps_what_ocr_reads(service: DocService, name: str) -> None:
    png = _page_png(name)
    read = service.run("ocr", png, "image/png").result["text"]
    markdown = service.run("parse", png, "image/png").result["markdown"]
    assert read.strip()
    assert missing_share(read, markdown) <= 0.01, (name, markdown)


def _letters(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text) if c.isalnum())


def _kind(block: dict[str, Any]) -> str:
    return "heading" if block.get("text_level") else block["type"]


def _words(block: dict[str, Any]) -> list[str]:
    """What a block says, piece by piece, read off the content list."""
    kind = block["type"]
    if kind == "list":
        return block["list_items"]
    if kind == "code":
        return block["code_body"].splitlines()
    if kind == "table":
        cells = re.findall(r"<td[^>]*>(.*?)</td>", block["table_body"], re.DOTALL)
        return [html.unescape(cell) for cell in cells]
    if kind == "image":
        return [block["image_text"], *block["image_caption"]]
    return [block["text"]]


@pytest.fixture(scope="module")
def every_kind(service: DocService) -> dict[str, Any]:
    """One document with every block kind, parsed once with chunks; the CLI's renderings of it."""
    scans = [pdfgen.scanned_pdf(DEVSET / f"{page}.png") for page in ("001", "003", "010")]
    born_digital = [GENERATED["manual"].pdf, GENERATED["prices (ruled)"].pdf]
    body = service.run("parse", pdfgen.joined(scans + born_digital), "application/pdf", {"chunks": "true"})
    shown = body.body()
    rendered = {fmt: render("parse", shown, fmt) for fmt in FORMATS}
    return {"blocks": body.result["content_list"], "rendered": rendered}


def test_the_document_holds_every_block_kind(every_kind: dict[str, Any]) -> None:
    assert set(KINDS) <= {_kind(block) for block in every_kind["blocks"]}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_carries_every_block_kind(every_kind: dict[str, Any], fmt: str, kind: str) -> None:
    shown = every_kind["rendered"][fmt]
    if fmt == "chunks":
        shown = "\n".join(json.loads(line)["text"] for line in shown.splitlines())
    letters = _letters(html.unescape(shown))
    blocks = [block for block in every_kind["blocks"] if _kind(block) == kind]
    assert blocks
    for block in blocks:
        for piece in _words(block):
            assert _letters(piece) in letters, (fmt, kind, piece)


def test_cli_text_format_prints_list_items(tmp_path: Path, model_store: Path) -> None:
    """`docfn run parse --format text` (it used to print only blocks with a ``text`` field)."""
    pdf = tmp_path / "manual.pdf"
    pdf.write_bytes(GENERATED["manual"].pdf)
    done = subprocess.run(
        [sys.executable, "-m", "docfn", "run", "parse", str(pdf), "--format", "text"],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCFN_MODEL_STORE": str(model_store)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for item in pdfgen.MANUAL_ITEMS:
        assert item in done.stdout
    for line in pdfgen.MANUAL_CODE:
        assert line in done.stdout
