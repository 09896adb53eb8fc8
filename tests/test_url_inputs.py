"""Inputs by URL through a real ``docfn serve``: a real local HTTP server (admitted by
DOCFN_URL_ALLOWED_NETWORKS), the function's own bucket on moto's S3 server, and the refusals."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from docfn.adapters.http.url_inputs import UrlInputs
from docfn.adapters.http.url_targets import UrlTargets
from docfn.core.errors import BadInput
from docfn.core.settings import Settings
from docfn_testkit.paths import SAMPLE_PAGE
from docfn_testkit.servers import DocfnServer, S3Server, running_server

# The documents' server listens on 127.0.0.2 and only that address is admitted: 127.0.0.1 (where
# nothing listens) stands for "the function's own network".
DOCS_HOST = "127.0.0.2"
URL_MAX_BYTES = 1_000_000
SLOW_HOP_SECONDS = 0.3


class DocumentServer:
    """A real HTTP server in this process, recording the Host header of every request."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.hosts.append(self.headers.get("host", ""))
                port = self.server.server_address[1]
                redirects = {
                    "/to-loopback": f"http://127.0.0.1:{port}/page.png",
                    "/to-metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
                    "/to-page": "/page.png",
                }
                if self.path.startswith("/slow-hop/"):  # each hop well within the deadline alone
                    time.sleep(SLOW_HOP_SECONDS)
                    hop = int(self.path.rsplit("/", 1)[-1])
                    self.send_response(302)
                    self.send_header("Location", f"/slow-hop/{hop + 1}" if hop < 4 else "/page.png")
                    self.end_headers()
                elif self.path == "/drip.png":  # a byte at a time, each read well within the deadline
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.end_headers()
                    for byte in SAMPLE_PAGE.read_bytes()[:40]:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(SLOW_HOP_SECONDS)
                elif self.path in redirects:
                    self.send_response(302)
                    self.send_header("Location", redirects[self.path])
                    self.end_headers()
                elif self.path == "/page.png":
                    data = SAMPLE_PAGE.read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif self.path == "/endless.png":  # no Content-Length: the cap must hold while reading
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.end_headers()
                    chunk = b"\x89PNG\r\n\x1a\n" + bytes(64 * 1024)
                    for _ in range(URL_MAX_BYTES // len(chunk) + 4):
                        self.wfile.write(chunk)
                else:
                    self.send_error(404)

            def log_message(self, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer((DOCS_HOST, 0), Handler)
        self.port = int(self.httpd.server_address[1])
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = DOCS_HOST) -> str:
        return f"http://{host}:{self.port}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def documents() -> Iterator[DocumentServer]:
    server = DocumentServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(model_store: Path) -> Iterator[DocfnServer]:
    yield from running_server(
        model_store,
        "ocr",
        # Link-local admitted too: the metadata endpoints must stay refused regardless.
        DOCFN_URL_ALLOWED_NETWORKS=f"{DOCS_HOST}/32,169.254.0.0/16",
        DOCFN_URL_MAX_BYTES=str(URL_MAX_BYTES),
    )


def test_json_url_and_query_url_read_the_same_content_addressed_input(
    server: DocfnServer, documents: DocumentServer
) -> None:
    with server.client() as client:
        first = client.post("/v1/ocr", json={"url": documents.url("/page.png")})
        assert first.status_code == 200, first.text
        assert "RaggedRight" in first.json()["result"]["text"]
        # Another URL (a redirect to it), the query form, and the bytes themselves: one cache entry,
        # because the key is the hash of the bytes, never of the URL.
        again = client.post("/v1/ocr", params={"url": documents.url("/to-page")})
        assert again.status_code == 200, again.text
        direct = client.post("/ocr", content=SAMPLE_PAGE.read_bytes(), headers={"content-type": "image/png"})
    assert again.json()["cached"] is True and direct.json()["cached"] is True
    shas = {r.json()["input_sha256"] for r in (first, again, direct)}
    assert len(shas) == 1


@pytest.mark.parametrize(
    ("path", "host"),
    [
        ("/page.png", "127.0.0.1"),  # loopback, directly
        ("/page.png", "localhost"),  # a host name resolving to loopback
        ("/to-loopback", DOCS_HOST),  # an admitted server redirecting to loopback
        ("/to-metadata", DOCS_HOST),  # ... or to the metadata endpoint
        # IPv6 forms of loopback and metadata: NAT64 (well-known and local-use), 6to4, Teredo (its
        # client address is stored inverted: 80ff:fffe is 127.0.0.1), IPv4-compatible.
        ("/page.png", "[64:ff9b::7f00:1]"),
        ("/page.png", "[64:ff9b::a9fe:a9fe]"),
        ("/page.png", "[64:ff9b:1::7f00:1]"),
        ("/page.png", "[2002:7f00:1::1]"),
        ("/page.png", "[2001:0:4136:e378:8000:63bf:80ff:fffe]"),
        ("/page.png", "[::7f00:1]"),
    ],
)
def test_urls_reaching_private_addresses_are_refused(
    server: DocfnServer, documents: DocumentServer, path: str, host: str
) -> None:
    with server.client() as client:
        response = client.post("/v1/ocr", json={"url": documents.url(path, host)})
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert "resolves to a non-public address" in message
    if host == "localhost":  # what a name resolved to is never told: it would map internal DNS
        assert "127.0.0.1" not in message


def test_a_refusal_never_names_the_address_a_host_resolved_to(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def internal_dns(host: object, port: object, *args: object, **kwargs: object) -> list:
        answer = {"db.internal.example": "10.1.2.3", "nat64.example": "64:ff9b::a01:203"}.get(str(host))
        return real(answer or host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", internal_dns)
    inputs = UrlInputs(Settings(), store=lambda: None)  # type: ignore[arg-type,return-value]
    for host in ("db.internal.example", "nat64.example"):
        with pytest.raises(BadInput, match="non-public") as refused:
            inputs.fetch(f"http://{host}/page.png")
        message = refused.value.message
        assert "10.1.2.3" not in message and "a01:203" not in message and host in message


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("64:ff9b::808:808", True),  # NAT64 of a public address: judged as 8.8.8.8
        ("64:ff9b::7f00:2", True),  # NAT64 of an admitted network (127.0.0.2/32)
        ("64:ff9b::7f00:1", False),
        ("64:ff9b::a9fe:a9fe", False),  # metadata, even with link-local admitted
        ("64:ff9b:1:7f00:1::", False),  # local-use NAT64, 127.0.0.1 in the /48 layout
        ("2002:808:808::1", True),
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", False),  # Teredo is never global, even to public ends
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo client 192.0.2.45 (TEST-NET)
        ("::a00:1", False),
        ("2606:4700::1111", True),  # plain public IPv6 is unaffected
        ("::1", False),
    ],
)
def test_ipv6_forms_are_judged_by_the_ipv4_they_embed(address: str, allowed: bool) -> None:
    targets = UrlTargets(Settings(url_allowed_networks=[f"{DOCS_HOST}/32", "169.254.0.0/16"]))
    assert targets.allowed(ipaddress.ip_address(address)) is allowed


def _timed_fetch(url: str, seconds: float) -> tuple[BadInput, float]:
    settings = Settings(url_allowed_networks=[f"{DOCS_HOST}/32"], url_fetch_timeout_seconds=seconds)
    inputs = UrlInputs(settings, store=lambda: None)  # type: ignore[arg-type,return-value]
    started = time.monotonic()
    with pytest.raises(BadInput, match="took longer than") as late:
        inputs.fetch(url)
    return late.value, time.monotonic() - started


def test_one_deadline_covers_every_redirect_hop(documents: DocumentServer) -> None:
    """Five hops of 0.3 s each, none slow on its own: the 1 s deadline is for all of them."""
    _, elapsed = _timed_fetch(documents.url("/slow-hop/0"), 1.0)
    assert elapsed < 1.3


def test_one_deadline_covers_a_slowly_dripped_body(documents: DocumentServer) -> None:
    _, elapsed = _timed_fetch(documents.url("/drip.png"), 1.0)
    assert elapsed < 1.3


def test_one_deadline_covers_name_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def slow_dns(host: object, port: object, *args: object, **kwargs: object) -> list:
        if host == "slow.example":
            time.sleep(3)
            host = DOCS_HOST
        return real(host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", slow_dns)
    _, elapsed = _timed_fetch("http://slow.example/page.png", 0.5)
    assert elapsed < 0.8


def test_the_metadata_endpoint_is_refused_even_when_link_local_is_admitted(server: DocfnServer) -> None:
    with server.client() as client:
        response = client.post("/v1/ocr?url=http://169.254.169.254/latest/meta-data/")
    assert response.status_code == 400
    assert "non-public" in response.json()["error"]["message"]


def test_size_cap_schemes_and_bad_bodies(server: DocfnServer, documents: DocumentServer) -> None:
    with server.client() as client:
        endless = client.post("/v1/ocr", json={"url": documents.url("/endless.png")})
        assert endless.status_code == 413
        assert f"{URL_MAX_BYTES:,}" in endless.json()["error"]["message"]
        for url in ("file:///etc/passwd", "ftp://example.com/a.pdf", "gopher://x"):
            refused = client.post("/v1/ocr", json={"url": url})
            assert refused.status_code == 400 and "http(s)://" in refused.json()["error"]["message"]
        missing = client.post("/v1/ocr", json={"url": documents.url("/nothing.png")})
        assert missing.status_code == 400 and "HTTP 404" in missing.json()["error"]["message"]
        unnamed = client.post("/v1/ocr", json={"link": "x"})
        assert unnamed.status_code == 400 and '{"url"' in unnamed.json()["error"]["message"]
        no_bucket = client.post("/v1/ocr", json={"url": "s3://docfn-test/page.png"})
        assert no_bucket.status_code == 503 and "DOCFN_BUCKET" in no_bucket.json()["error"]["message"]


def test_a_host_name_is_resolved_once_and_the_checked_address_is_dialled(
    documents: DocumentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers an admitted address for the check and loopback afterwards.
    The connection goes to the checked address; the name travels only in the Host header."""
    real = socket.getaddrinfo
    answers: list[str] = []

    def rebinding(host: object, port: object, *args: object, **kwargs: object) -> list:
        if host != "docs.example":
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        answer = DOCS_HOST if not answers else "127.0.0.1"
        answers.append(answer)
        return real(answer, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    inputs = UrlInputs(Settings(url_allowed_networks=[f"{DOCS_HOST}/32"]), store=lambda: None)  # type: ignore[arg-type,return-value]
    fetched = inputs.fetch(f"http://docs.example:{documents.port}/page.png")
    assert fetched.data == SAMPLE_PAGE.read_bytes()
    assert answers == [DOCS_HOST]  # resolved once
    assert documents.hosts[-1] == f"docs.example:{documents.port}"


def test_s3_urls_of_the_functions_own_bucket(model_store: Path, s3_server: S3Server) -> None:
    s3_server.client().put_object(
        Bucket="docfn-test", Key="inputs/page.png", Body=SAMPLE_PAGE.read_bytes(), ContentType="image/png"
    )
    env = {
        "DOCFN_MODEL_STORE": str(model_store),
        "DOCFN_TASKS": "ocr",
        "DOCFN_BUCKET": "docfn-test",
        "DOCFN_S3_ENDPOINT_URL": s3_server.endpoint_url,
    }
    instance = DocfnServer(env).start()
    try:
        with instance.client() as client:
            read = client.post("/v1/ocr", json={"url": "s3://docfn-test/inputs/page.png"})
            other = client.post("/v1/ocr", json={"url": "s3://someone-else/inputs/page.png"})
            gone = client.post("/v1/ocr", json={"url": "s3://docfn-test/inputs/none.png"})
    finally:
        instance.stop()
    assert read.status_code == 200, read.text
    assert "RaggedRight" in read.json()["result"]["text"]
    assert other.status_code == 400 and "this function's bucket" in other.json()["error"]["message"]
    assert gone.status_code == 404


def test_an_s3_object_the_role_may_not_read_is_403_not_a_retryable_503(model_store: Path) -> None:
    """moto with IAM enforced (``docfn_testkit.s3_policies``): the function's credentials are a user
    who may read ``inputs/`` only. The object outside it is AccessDenied: 403, no Retry-After."""
    from docfn_testkit.s3_policies import enforcing_s3, with_reader

    page = SAMPLE_PAGE.read_bytes()
    s3 = enforcing_s3().start()
    instance = None
    try:
        reader = with_reader(s3, "docfn-test", "inputs/", {"inputs/page.png": page, "private/page.png": page})
        env = {
            "DOCFN_MODEL_STORE": str(model_store),
            "DOCFN_TASKS": "ocr",
            "DOCFN_BUCKET": "docfn-test",
            "DOCFN_S3_ENDPOINT_URL": s3.endpoint_url,
            **reader.env,
        }
        instance = DocfnServer(env).start()
        with instance.client() as client:
            allowed = client.post("/v1/ocr", json={"url": "s3://docfn-test/inputs/page.png"})
            denied = client.post("/v1/ocr", json={"url": "s3://docfn-test/private/page.png"})
    finally:
        if instance is not None:
            instance.stop()
        s3.stop()
    assert allowed.status_code == 200, allowed.text
    assert denied.status_code == 403, denied.text
    assert "retry-after" not in denied.headers
    error = denied.json()["error"]
    assert error["code"] == "access_denied" and "private/page.png" in error["message"]
    assert error["request_id"] == denied.headers["x-request-id"]
