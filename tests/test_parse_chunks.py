"""parse's retrieval chunks: cut from the Markdown so that, less their overlaps, they are exactly it;
token-sized, section-aware, with boxes on the pages their text comes from (a two-page PDF of an
English and a Chinese devset page); and the CLI's ``--format chunks`` JSON Lines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from docfn.adapters.wiring import build_service
from docfn.core.sentences import token_count
from docfn.core.settings import Settings
from docfn.core.textmetrics import normalise
from docfn_testkit.cli import run_docfn
from docfn_testkit.pdfgen import joined, scanned_pdf

SIZE, OVERLAP = 80, 20
PAGES = ("003", "005")  # English, then Chinese


@pytest.fixture(scope="module")
def parsed(model_store: Path, devset: Path) -> dict:
    pdf = joined([scanned_pdf(devset / f"{page}.png") for page in PAGES])
    service = build_service(Settings(tasks=["parse"], model_store=model_store))
    options = {"chunks": "true", "chunk_tokens": str(SIZE), "chunk_overlap": str(OVERLAP)}
    return service.run("parse", pdf, "application/pdf", options).result


def test_chunks_cover_the_markdown_exactly_once(parsed: dict) -> None:
    markdown, chunks = parsed["markdown"], parsed["chunks"]
    assert len(chunks) > 3
    assert "".join(c["text"][c["overlap"] :] for c in chunks) == markdown
    position = 0
    for n, chunk in enumerate(chunks):
        assert chunk["index"] == n
        assert markdown[chunk["start"] : chunk["end"]] == chunk["text"]
        assert chunk["start"] + chunk["overlap"] == position  # each character once, past the overlap
        position = chunk["end"]
        assert token_count(chunk["text"]) == chunk["tokens"] <= SIZE
        assert token_count(chunk["text"][: chunk["overlap"]]) <= OVERLAP
    assert any(c["overlap"] > 0 for c in chunks)


def test_chunks_follow_sections(parsed: dict) -> None:
    blocks = parsed["content_list"]
    for chunk in parsed["chunks"]:
        headings = [blocks[b["block"]] for b in chunk["boxes"] if blocks[b["block"]].get("text_level")]
        for heading in headings:  # a heading opens its chunk: no chunk holds two sections
            assert chunk["text"][chunk["overlap"] :].startswith("#")
            assert chunk["heading_path"][-1] == heading["text"]
    assert any(len(c["heading_path"]) >= 2 for c in parsed["chunks"])


def test_provenance_boxes_lie_on_their_pages(parsed: dict, devset: Path) -> None:
    """Each box's block reads like its own page's truth text more than like the other page's."""
    from rapidfuzz import fuzz

    truth = [normalise((devset / f"{page}.txt").read_text()) for page in PAGES]
    blocks = parsed["content_list"]
    seen_pages = set()
    for chunk in parsed["chunks"]:
        for box in chunk["boxes"]:
            block = blocks[box["block"]]
            assert (box["page_idx"], box["bbox"]) == (block["page_idx"], block["bbox"])
            assert box["page_idx"] in chunk["page_idx"]
            seen_pages.add(box["page_idx"])
            text = block.get("text") or " ".join(block.get("list_items", []))
            if len(normalise(text)) >= 10:
                own, other = (
                    fuzz.partial_ratio(normalise(text), t)
                    for t in (truth[box["page_idx"]], truth[1 - box["page_idx"]])
                )
                assert own > other, (text, own, other)
    assert seen_pages == {0, 1}
    assert any(len(c["page_idx"]) == 1 for c in parsed["chunks"])


def test_options_are_checked(model_store: Path) -> None:
    service = build_service(Settings(tasks=["parse"], model_store=model_store))
    with pytest.raises(Exception, match="chunk_overlap"):
        service.validate_options("parse", {"chunks": "true", "chunk_tokens": "50", "chunk_overlap": "50"})


def test_cli_format_chunks_is_json_lines(model_store: Path, devset: Path) -> None:
    def docfn_run(task: str) -> subprocess.CompletedProcess[str]:
        argv = ["run", task, str(devset / "003.png"), "--format", "chunks"]
        return run_docfn(*argv, env={"DOCFN_MODEL_STORE": str(model_store)})

    done = docfn_run("parse")
    assert done.returncode == 0, done.stderr
    chunks = [json.loads(line) for line in done.stdout.splitlines()]
    assert chunks and all({"text", "page_idx", "boxes", "heading_path"} <= set(c) for c in chunks)
    refused = docfn_run("ocr")
    assert refused.returncode == 2 and "--format chunks is for parse" in refused.stderr
