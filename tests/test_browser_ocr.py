"""OCR in the browser (issue 29), in Debian's headless Chromium through Playwright: the page at ``/``
reads devset pages with the OCR pack on onnxruntime-web while the server sees no task request, and
its answer matches the server's on the same pack; a page past the memory budget and a browser
without WebAssembly are refused in the page; `docfn export-web` works from a plain static server
and its pack files are checked in the browser. The page at ``/`` is cross-origin isolated, so it reads on
several WASM threads; a static host without the isolation headers gets one thread, and one that
isolates the page but not the runtime's worker script gets one thread rather than a hang. Slow (a
page takes seconds in WASM): the ``browser`` group."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from docfn.core.textmetrics import cer
from docfn.packs.catalog import DEFAULT_PACKS
from docfn.packs.store import pack_dir
from docfn_testkit.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ISOLATION_HEADERS,
    chromium,
    matched_lines,
    read_in_browser,
    static_host,
)
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import DocfnServer, free_port, running_server, wait_for_port

# The page may fetch its own assets and the pack, and show the image from a blob: URL; nothing else.
ALLOWED = re.compile(r"^(blob:|data:|https?://[^/]+/try/(ocr|ocr-pack)/[\w.-]+$)")


@pytest.fixture(scope="module")
def server(model_store: Path) -> Iterator[DocfnServer]:
    yield from running_server(model_store, "ocr")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


def _task_requests(server: DocfnServer) -> float:
    """Every task request the server has counted (docfn_requests_total, all tasks and statuses)."""
    text = httpx.get(server.url + "/metrics", timeout=30).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("docfn_requests_total{")
    )


def test_the_browser_reads_the_devset_like_the_server_and_uploads_nothing(
    server: DocfnServer, browser: Any, devset: Path
) -> None:
    pages = sorted(devset.glob("*.png"))
    page = browser.new_page()
    workers: list[str] = []
    page.on("worker", lambda worker: workers.append(worker.url))
    page.goto(server.url + "/")
    assert page.evaluate("crossOriginIsolated") is True  # the headers on / (COOP/COEP)
    cores = page.evaluate("navigator.hardwareConcurrency")
    before = _task_requests(server)
    reads = {path.name: read_in_browser(page, path) for path in pages}
    assert _task_requests(server) == before, "the server saw a task request while the browser read"
    # Several WASM threads: onnxruntime-web's pthread workers were started from the runtime's script.
    threads = {read.result["threads"] for read in reads.values() if read.result}
    assert threads == {min(cores, 4)} and min(cores, 4) > 1, (threads, cores)
    assert all(read.result and read.result["cross_origin_isolated"] is True for read in reads.values())
    assert page.evaluate("document.body.dataset.ocrThreads") == str(min(cores, 4))
    pthreads = [url for url in workers if url.endswith("/try/ocr/ort-wasm-simd-threaded.mjs")]
    assert len(pthreads) >= min(cores, 4) - 1, workers
    for name, read in reads.items():
        assert read.state == "done", f"{name}: {read.status}"
        stray = [(method, url) for method, url in read.requests if method != "GET" or not ALLOWED.match(url)]
        assert stray == [], f"{name}: the page sent requests besides its assets and the pack"
    # The first read fetched the pack (verified in the page); later reads fetched nothing at all.
    assert any("/try/ocr-pack/rec.onnx" in url for _, url in reads[pages[0].name].requests)
    assert all(
        read.requests == [] or all(u.startswith("blob:") for _, u in read.requests)
        for read in list(reads.values())[1:]
    )

    manifest = httpx.get(server.url + "/try/ocr-pack/manifest.json", timeout=30).json()
    same_pack = f"{manifest['name']}/{manifest['version']}"  # the pack the server's ocr task loads
    browser_cer, server_cer, lines, matched = [], [], 0, 0
    for path in pages:
        served = httpx.post(
            server.url + "/v1/ocr",
            content=path.read_bytes(),
            headers={"content-type": "image/png"},
            timeout=300,
        )
        assert served.status_code == 200, served.text
        ours, theirs = reads[path.name].result, served.json()
        assert ours is not None and ours["pack"] == same_pack
        truth = path.with_suffix(".txt").read_text(encoding="utf-8")
        browser_page, server_page = ours["result"]["pages"][0], theirs["result"]["pages"][0]
        browser_cer.append(cer(browser_page["text"], truth))
        server_cer.append(cer(server_page["text"], truth))
        lines += len(server_page["lines"])
        matched += matched_lines(server_page["lines"], browser_page["lines"], 0.9)
    mean_browser, mean_server = sum(browser_cer) / len(pages), sum(server_cer) / len(pages)
    assert abs(mean_browser - mean_server) <= 0.005, (mean_browser, mean_server)
    assert lines > 100 and matched / lines >= 0.95, (matched, lines)


def test_a_page_past_the_memory_budget_is_refused_naming_the_limit(
    server: DocfnServer, browser: Any, tmp_path: Path
) -> None:
    huge = tmp_path / "huge.png"
    Image.new("1", (9000, 6000), 1).save(huge)  # 54 MP, a few KB as a PNG
    page = browser.new_page()
    page.goto(server.url + "/")
    read = read_in_browser(page, huge)
    assert read.state == "error"
    assert "9000 x 6000" in read.status and "limited to 40 MP" in read.status
    assert not any("/try/ocr-pack/" in url for _, url in read.requests), "refused before fetching the pack"


def test_a_browser_without_webassembly_says_it_cannot_read(server: DocfnServer, browser: Any) -> None:
    # --jitless turns V8's WebAssembly off, as a locked-down browser may.
    instance = browser.browser_type.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--js-flags=--jitless"]
    )
    try:
        page = instance.new_page()
        page.goto(server.url + "/")
        read = read_in_browser(page, SAMPLE_PAGE)
    finally:
        instance.close()
    assert read.state == "error"
    assert "no WebAssembly" in read.status and "cannot read pages itself" in read.status


def test_a_browser_without_wasm_simd_says_it_cannot_read(server: DocfnServer, browser: Any) -> None:
    # Chromium cannot switch SIMD off any more, so the page's feature probe is told there is none;
    # onnxruntime-web ships SIMD builds only, so the page says it cannot rather than fall back.
    page = browser.new_page()
    page.add_init_script("""{
        const validate = WebAssembly.validate;
        WebAssembly.validate = (bytes) => bytes.length === 31 ? false : validate(bytes);
    }""")
    page.goto(server.url + "/")
    read = read_in_browser(page, SAMPLE_PAGE)
    assert read.state == "error"
    assert "no WebAssembly SIMD" in read.status


@pytest.fixture
def exported(model_store: Path, tmp_path: Path) -> Path:
    site = tmp_path / "site"
    pack = pack_dir(model_store, DEFAULT_PACKS["ocr"], "2")
    done = subprocess.run(
        [sys.executable, "-m", "docfn", "export-web", str(site), "--pack", str(pack)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return site


@pytest.fixture
def static_site(exported: Path) -> Iterator[tuple[str, Path]]:
    site = exported
    port = free_port()
    host = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_port(port, process=host)
        yield url, site
    finally:
        host.terminate()
        host.wait(timeout=10)


def test_the_static_export_reads_a_page_from_a_plain_static_host(
    static_site: tuple[str, Path], browser: Any
) -> None:
    url, site = static_site
    page = browser.new_page()
    page.goto(url + "/")
    assert page.is_checked("#local") and page.is_hidden("#task")
    read = read_in_browser(page, SAMPLE_PAGE)
    assert read.state == "done", read.status
    assert read.result is not None and len(read.result["result"]["pages"][0]["lines"]) > 20
    assert "Knuth" in read.result["result"]["text"]
    # No isolation headers on a plain host: one WASM thread.
    assert read.result["cross_origin_isolated"] is False and read.result["threads"] == 1
    assert {url.rsplit("/", 2)[-2] for _, url in read.requests if not url.startswith("blob:")} <= {
        "ocr",
        "pack",
    }

    # A pack file changed on the host is refused in the page: its sha256 no longer matches.
    with (site / "pack" / "rec_dict.txt").open("a", encoding="utf-8") as dictionary:
        dictionary.write("x\n")
    fresh = browser.new_page()
    fresh.goto(url + "/")
    tampered = read_in_browser(fresh, SAMPLE_PAGE)
    assert tampered.state == "error" and "rec_dict.txt failed verification" in tampered.status


@pytest.mark.parametrize("isolated", ["every file", "every file, credentialless", "the page only"])
def test_the_static_export_uses_threads_where_the_host_isolates_it(
    exported: Path, browser: Any, isolated: str
) -> None:
    """The headers the export's README names, sent on every file, give the page threads; sent on the
    page alone, the runtime's worker script is refused (COEP) and the page reads on one thread."""
    assert "Cross-Origin-Embedder-Policy: require-corp" in (exported / "README.md").read_text()

    sent = dict(ISOLATION_HEADERS)
    if isolated.endswith("credentialless"):
        sent["Cross-Origin-Embedder-Policy"] = "credentialless"

    def headers(path: str) -> dict[str, str]:
        return sent if isolated.startswith("every file") or path in ("/", "/index.html") else {}

    with static_host(exported, headers) as url:
        page = browser.new_page()
        page.goto(url + "/")
        assert page.evaluate("crossOriginIsolated") is True
        cores = page.evaluate("navigator.hardwareConcurrency")
        read = read_in_browser(page, SAMPLE_PAGE)
    assert read.state == "done", read.status
    assert read.result is not None and "Knuth" in read.result["result"]["text"]
    assert read.result["cross_origin_isolated"] is True
    if isolated.startswith("every file"):
        assert read.result["threads"] == min(cores, 4) > 1, (read.result["threads"], cores)
    else:
        assert read.result["threads"] == 1


def test_without_an_ocr_pack_the_page_is_told_so(model_store: Path) -> None:
    for instance in running_server(model_store, "layout"):
        answer = httpx.get(instance.url + "/try/ocr-pack/manifest.json", timeout=30)
        assert answer.status_code == 404 and "serves no OCR pack" in answer.json()["error"]["message"]
