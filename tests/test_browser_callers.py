"""Browser callers against a real ``docfn serve``: CORS and its preflight, HEAD on the health
endpoints, ``/docs`` with no CDN, and OpenAPI for every task route and short alias."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import DocfnServer, running_server

ORIGIN = "https://app.example"


@pytest.fixture(scope="module")
def server(model_store: Path) -> Iterator[DocfnServer]:
    yield from running_server(model_store, "ocr", DOCFN_CORS_ALLOW_ORIGINS=ORIGIN)


def test_preflight_is_answered_for_an_allowed_origin(server: DocfnServer) -> None:
    with server.client() as client:
        preflight = client.options(
            "/v1/ocr",
            headers={
                "origin": ORIGIN,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type, x-request-id",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "x-request-id" in preflight.headers["access-control-allow-headers"].lower()

        refused = client.options(
            "/v1/ocr", headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
        )
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers


def test_a_cross_origin_answer_exposes_the_headers_a_page_reads(server: DocfnServer) -> None:
    with server.client() as client:
        response = client.post(
            "/ocr", content=SAMPLE_PAGE.read_bytes(), headers={"content-type": "image/png", "origin": ORIGIN}
        )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    exposed = response.headers["access-control-expose-headers"].lower()
    assert {"x-request-id", "server-timing", "retry-after"} <= set(exposed.replace(" ", "").split(","))


def test_no_cors_headers_unless_origins_are_configured(model_store: Path) -> None:
    instance = DocfnServer({"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "ocr"}).start()
    try:
        with instance.client() as client:
            response = client.get("/healthz", headers={"origin": ORIGIN})
            preflight = client.options(
                "/v1/ocr", headers={"origin": ORIGIN, "access-control-request-method": "POST"}
            )
    finally:
        instance.stop()
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in preflight.headers


def test_head_on_health_endpoints(server: DocfnServer) -> None:
    with server.client() as client:
        for path in ("/healthz", "/readyz"):
            response = client.head(path)
            assert response.status_code == 200, path
            assert response.content == b""
            assert response.headers["x-request-id"]


def test_docs_load_everything_from_this_server(server: DocfnServer) -> None:
    with server.client() as client:
        page = client.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
        assert urls, page.text
        assert all(url.startswith("/") for url in urls), urls  # no CDN, no other host
        for url in urls:
            asset = client.get(url)
            assert asset.status_code == 200, url
        bundle = client.get("/docs/assets/swagger-ui-bundle.js")
        assert "javascript" in bundle.headers["content-type"]
        assert b"SwaggerUIBundle" in bundle.content
        assert client.get("/docs/assets/..%2F__init__.py").status_code == 404
        redoc = client.get("/redoc")
        assert "/docs/assets/redoc.standalone.js" in redoc.text and "cdn" not in redoc.text.lower()


def test_openapi_documents_task_routes_and_short_aliases(server: DocfnServer) -> None:
    with server.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/ocr", "/ocr"):
        operation = paths[path]["post"]
        parameters = {p["name"] for p in operation["parameters"]}
        assert {"pages", "min_confidence", "angle_cls"} <= parameters, path
        content = operation["requestBody"]["content"]
        assert {"image/png", "application/pdf", "multipart/form-data"} <= set(content), path
    assert "alias" in paths["/ocr"]["post"]["summary"].lower()
    assert "/parse" not in paths  # not served here: answered with 404, not advertised
