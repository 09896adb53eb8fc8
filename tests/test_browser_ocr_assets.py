"""What the page's "read in this browser" mode loads, served by the function itself (no CDN): the
built assets at /try/ocr/, built from the npm lock, and the OCR pack's files at /try/ocr-pack/
exactly as the manifest lists them (issue 29). The reading itself: tests/test_browser_ocr.py."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from docfn.adapters.http.web_assets import OCR_ASSETS
from docfn_testkit.paths import ROOT
from docfn_testkit.servers import DocfnServer, running_server

WEB = ROOT / "web"


@pytest.fixture(scope="module")
def server(model_store: Path) -> Iterator[DocfnServer]:
    yield from running_server(model_store, "ocr")


def test_the_npm_packages_are_locked_with_integrity() -> None:
    package = json.loads((WEB / "package.json").read_text())
    lock = json.loads((WEB / "package-lock.json").read_text())
    assert lock["lockfileVersion"] >= 3
    for name, version in {**package["dependencies"], **package["devDependencies"]}.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version  # exact pins
    installed = [entry for path, entry in lock["packages"].items() if path.startswith("node_modules/")]
    assert installed and all(entry["integrity"].startswith("sha512-") for entry in installed)


def test_the_built_assets_come_from_the_lock() -> None:
    built = json.loads((OCR_ASSETS / "BUILD.json").read_text())
    lock = json.loads((WEB / "package-lock.json").read_text())
    for name, version in built["versions"].items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    runtime = WEB / "node_modules" / "onnxruntime-web" / "dist" / "ort-wasm-simd-threaded.wasm"
    assert (OCR_ASSETS / "ort-wasm-simd-threaded.wasm").read_bytes() == runtime.read_bytes()


def test_the_function_serves_the_assets(server: DocfnServer) -> None:
    script = httpx.get(server.url + "/try/ocr/docfn-ocr.js", timeout=30)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "BrowserOcr" in script.text
    wasm = httpx.get(server.url + "/try/ocr/ort-wasm-simd-threaded.wasm", timeout=30)
    assert wasm.headers["content-type"] == "application/wasm" and wasm.content[:4] == b"\0asm"
    page = httpx.get(server.url + "/", timeout=30).text
    assert 'data-ocr-assets="/try/ocr/"' in page and 'id="local"' in page
    # Cross-origin isolated (WASM threads): the page, and the runtime's worker script, which the
    # browser refuses on an isolated page without a COEP header of its own.
    isolated = {"cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp"}
    for path in ("/", "/try/app.js", "/try/ocr/docfn-ocr.js", "/try/ocr/ort-wasm-simd-threaded.mjs"):
        headers = httpx.get(server.url + path, timeout=30).headers
        assert {name: headers.get(name) for name in isolated} == isolated, path
    mjs = httpx.get(server.url + "/try/ocr/ort-wasm-simd-threaded.mjs", timeout=30)
    assert mjs.headers["content-type"].startswith("text/javascript")
    for name in ("app.js.map", "..%2Fapp.js", "BUILD.txt"):
        assert httpx.get(server.url + f"/try/ocr/{name}", timeout=30).status_code == 404


def test_the_function_serves_its_ocr_pack_as_the_manifest_lists_it(server: DocfnServer) -> None:
    manifest = httpx.get(server.url + "/try/ocr-pack/manifest.json", timeout=30)
    assert manifest.status_code == 200
    listed = manifest.json()
    assert listed["name"].startswith("ocr-")
    for entry in listed["files"]:
        body = httpx.get(server.url + f"/try/ocr-pack/{entry['path']}", timeout=30).content
        assert (hashlib.sha256(body).hexdigest(), len(body)) == (entry["sha256"], entry["size"])
    missing = httpx.get(server.url + "/try/ocr-pack/.docfn-verified", timeout=30)
    assert missing.status_code == 404 and "not a file of the pack" in missing.json()["error"]["message"]


def test_a_function_without_an_ocr_pack_does_not_offer_the_browser_mode(model_store: Path) -> None:
    """layout reads no text: its page hides "read in this browser" (and its image ships no WASM)."""
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(contextlib.contextmanager(running_server)(model_store, "layout"))
        page = httpx.get(server.url + "/", timeout=30).text
    assert 'data-ocr-assets="" data-no-browser-ocr' in page
    assert 'data-ocr-assets="/try/ocr/"' not in page
