"""The page at ``/`` in a real headless browser (Debian's chromium, driven by Playwright): the
sample page is uploaded, parse runs, the regions are drawn over the page, the Markdown shows, the
timings and the JSON download are there, and a screenshot of it is checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from docfn_testkit.browser import chromium
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import DocfnServer, running_server

VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def server(model_store: Path) -> Iterator[DocfnServer]:
    yield from running_server(model_store, "ocr,layout,parse")


@pytest.fixture(scope="module")
def browser() -> Iterator:  # type: ignore[type-arg]
    try:
        with chromium() as instance:
            yield instance
    except RuntimeError as exc:  # chromium missing: a failure, with how to install it
        pytest.fail(str(exc))


def _nonblank(path: Path, size: tuple[int, int]) -> np.ndarray:
    image = Image.open(path).convert("RGB")
    assert image.size == size
    pixels = np.asarray(image)
    assert pixels.std() > 20, "the screenshot is (nearly) one colour"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200
    return pixels


@pytest.mark.parametrize(("task", "text"), [("parse", "Knuth describes"), ("layout", "title")])
def test_try_it_in_a_browser(server: DocfnServer, browser, tmp_path: Path, task: str, text: str) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport=VIEWPORT)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(server.url + "/")
    page.wait_for_selector(f"#task option[value={task}]", state="attached")
    page.set_input_files("#file", str(SAMPLE_PAGE))
    page.select_option("#task", task)
    page.click("#go")
    page.wait_for_selector("body[data-state=done]", timeout=120_000)

    assert page.locator("#status").inner_text().startswith(f"{task}:")
    regions = page.locator("#regions rect")
    assert regions.count() >= 3, "regions drawn over the page"
    image_box = page.locator("#page-image").bounding_box()
    first = regions.first.bounding_box()
    assert image_box and first and image_box["width"] > 300
    assert (
        image_box["x"] <= first["x"]
        and first["x"] + first["width"] <= image_box["x"] + image_box["width"] + 1
    )
    assert text in page.locator("#markdown").inner_text()
    phases = page.locator("#timings td:first-child").all_inner_texts()
    assert "decode" in phases and ({"inference", "first_inference"} & set(phases))
    download = page.locator("#download")
    assert download.get_attribute("href", timeout=1000).startswith("blob:")
    with page.expect_download() as saved:
        download.click()
    assert f'"task": "{task}"' in Path(saved.value.path()).read_text()
    # Everything the page loaded came from this server: no CDN, nothing else.
    assert requested and all(url.startswith((server.url, "blob:", "data:")) for url in requested), requested

    shot = tmp_path / f"try-{task}.png"
    page.screenshot(path=str(shot))
    _nonblank(shot, (VIEWPORT["width"], VIEWPORT["height"]))
    view = tmp_path / f"view-{task}.png"
    page.locator("#view").screenshot(path=str(view))
    pixels = _nonblank(view, Image.open(view).size)
    # The boxes' outline colours are on the page image: blue for text, orange for titles/figures.
    blue = (
        (pixels[..., 2] > 200) & (pixels[..., 0] < 80) & (pixels[..., 1] > 80) & (pixels[..., 1] < 140)
    ).sum()
    assert blue > 100
    page.close()


def test_docs_render_offline_in_a_browser(server: DocfnServer, browser) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport=VIEWPORT)
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server.url) else outside.append(r.url))
    page.goto(server.url + "/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=60_000)
    assert "/v1/parse" in page.locator(".swagger-ui").inner_text()
    assert outside == []
    page.close()


def test_page_preview_refuses_pages_past_the_end(server: DocfnServer) -> None:
    with server.client() as client:
        response = client.post(
            "/try/page?page=2", content=SAMPLE_PAGE.read_bytes(), headers={"content-type": "image/png"}
        )
        preview = client.post("/try/page", content=SAMPLE_PAGE.read_bytes())
    assert response.status_code == 422 and "out of range" in response.json()["error"]["message"]
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"
    assert Image.open(__import__("io").BytesIO(preview.content)).size == Image.open(SAMPLE_PAGE).size


def test_the_page_helper_is_admitted_like_the_tasks(model_store: Path) -> None:
    """One place in all (DOCFN_MAX_CONCURRENCY=1, DOCFN_MAX_QUEUE=0): while an eight-page OCR holds
    it, ``POST /try/page`` is refused 429 + Retry-After like a task; once it is free, it renders."""
    import threading

    import httpx

    from docfn_testkit.docgen import pdf_from_images
    from docfn_testkit.servers import scrape_metric, wait_until

    page = Image.open(SAMPLE_PAGE).convert("RGB")
    long_pdf = pdf_from_images([page] * 8)
    instance = DocfnServer(
        {
            "DOCFN_MODEL_STORE": str(model_store),
            "DOCFN_TASKS": "ocr",
            "DOCFN_MAX_CONCURRENCY": "1",
            "DOCFN_MAX_QUEUE": "0",
            "DOCFN_RETRY_AFTER_SECONDS": "2",
            # Not the deadline under test: a loaded machine must not turn eight pages into a 504.
            "DOCFN_INFERENCE_TIMEOUT_SECONDS": "300",
        }
    ).start()
    answers: list[httpx.Response] = []

    def long_request() -> None:
        with instance.client() as client:
            answers.append(
                client.post("/v1/ocr", content=long_pdf, headers={"content-type": "application/pdf"})
            )

    def in_flight() -> float:
        with instance.client() as client:
            return scrape_metric(client.get("/metrics").text, "docfn_in_flight") or 0.0

    def try_page() -> httpx.Response:
        with instance.client() as client:
            return client.post(
                "/try/page?page=1", content=SAMPLE_PAGE.read_bytes(), headers={"content-type": "image/png"}
            )

    try:
        worker = threading.Thread(target=long_request)
        worker.start()
        wait_until(lambda: in_flight() >= 1, "the OCR request to hold the one place", timeout=30, every=0.02)
        refused = try_page()
        worker.join(timeout=120)
        rendered = try_page()
    finally:
        instance.stop()
    assert answers and answers[0].status_code == 200, answers
    assert refused.status_code == 429, refused.text
    assert refused.headers["retry-after"] == "2" and refused.json()["error"]["code"] == "overloaded"
    assert rendered.status_code == 200 and rendered.headers["content-type"] == "image/png"
