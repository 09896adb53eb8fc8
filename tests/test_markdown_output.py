"""Markdown that stands alone: every image it links to travels with it (files, data URIs or the
result's images), on HTTP, the service and CLI stdout alike; ``layout --format md`` shows regions."""

from __future__ import annotations

import base64
import io
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from docfn.adapters.wiring import build_service
from docfn.core import imaging
from docfn.core.settings import Settings
from docfn.service.service import DocService
from docfn_testkit.cli import run_docfn

LINK = re.compile(r"!\[[^\]]*\]\(([^)]*)\)")


@pytest.fixture(scope="module")
def service(model_store: Path) -> DocService:
    return build_service(Settings(tasks=["parse", "layout"], model_store=model_store))


@pytest.fixture(scope="module")
def figure_page(devset: Path) -> bytes:
    return (devset / "010.png").read_bytes()  # bytefield's manual: diagrams with captions


def _is_png_data_uri(target: str) -> bool:
    prefix = "data:image/png;base64,"
    if not target.startswith(prefix):
        return False
    with Image.open(io.BytesIO(base64.b64decode(target[len(prefix) :]))) as image:
        return image.format == "PNG" and image.size[0] > 1


def _parse(service: DocService, data: bytes, **options: str) -> dict:
    return service.run("parse", data, "image/png", options).result


def test_without_crops_the_markdown_links_to_nothing(service: DocService, figure_page: bytes) -> None:
    result = _parse(service, figure_page)
    assert any(b["type"] == "image" for b in result["content_list"])
    assert "images" not in result and not LINK.findall(result["markdown"])


def test_without_crops_none_is_encoded_and_no_block_has_an_img_path(
    service: DocService, figure_page: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """images=none: no work for what is not returned (no PNG encoded), and no path to a file that
    does not exist. The same page with crops encodes one PNG per crop (an option unused elsewhere in
    this module keeps both runs off the cache)."""
    encoded: list[int] = []
    real = imaging.encode_png
    monkeypatch.setattr(imaging, "encode_png", lambda image: encoded.append(1) or real(image))
    with_crops = _parse(service, figure_page, images="base64", min_score="0.49")
    assert len(encoded) == len(with_crops["images"]) > 0
    encoded.clear()
    result = _parse(service, figure_page, min_score="0.49")
    assert not encoded
    crops = [b for b in result["content_list"] if b["type"] in {"image", "table", "equation"}]
    assert crops and not any("img_path" in b for b in crops)
    assert "images" not in result and not LINK.findall(result["markdown"])


def test_base64_crops_are_what_the_markdown_links_to(service: DocService, figure_page: bytes) -> None:
    result = _parse(service, figure_page, images="base64")
    links = LINK.findall(result["markdown"])
    assert links and set(links) <= set(result["images"])


def test_embed_puts_the_crops_inside_the_markdown(service: DocService, figure_page: bytes) -> None:
    result = _parse(service, figure_page, images="embed")
    links = LINK.findall(result["markdown"])
    assert links and all(_is_png_data_uri(target) for target in links)
    assert "images" not in result


def test_captions_appear_once(service: DocService, figure_page: bytes) -> None:
    result = _parse(service, figure_page, images="base64")
    captions = [c for b in result["content_list"] if b["type"] == "image" for c in b["image_caption"]]
    assert captions
    for caption in captions:
        assert result["markdown"].count(caption) == 1


def _cli(model_store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_docfn("run", *args, env={"DOCFN_MODEL_STORE": str(model_store)}, clean=True)


def test_cli_markdown_on_stdout_embeds_its_images(model_store: Path, devset: Path) -> None:
    done = _cli(model_store, "parse", str(devset / "010.png"), "--format", "md")
    assert done.returncode == 0, done.stderr
    links = LINK.findall(done.stdout)
    assert links and all(_is_png_data_uri(target) for target in links)


def test_cli_layout_markdown_renders_regions(model_store: Path, devset: Path) -> None:
    page = str(devset / "010.png")
    md = _cli(model_store, "layout", page, "--format", "md")
    text = _cli(model_store, "layout", page, "--format", "text")
    assert md.returncode == 0 and text.returncode == 0, md.stderr + text.stderr
    assert md.stdout != text.stdout
    lines = md.stdout.splitlines()
    assert lines[0] == "## Page 1 (1275x1650)"
    assert "| order | type | score | bbox (x0, y0, x1, y1 px) |" in lines
    rows = [line for line in lines if re.match(r"^\| \d+ \| \w+ \| 0\.\d\d \| ", line)]
    assert {"figure", "text"} <= {row.split(" | ")[1] for row in rows}
