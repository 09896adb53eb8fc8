"""Bad input gets a clear error with the right status, through the core and over real HTTP."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from docfn.core.documents import DecodeLimits, open_document, parse_page_ranges
from docfn.core.errors import BadInput, BadOptions, PayloadTooLarge, UnsupportedMediaType
from docfn_testkit.docgen import pdf_from_images
from docfn_testkit.inputs import blank_pdf, decompression_bomb_png, image_bytes, truncated
from docfn_testkit.paths import SAMPLE_PAGE

LIMITS = DecodeLimits(max_pixels=60_000_000, max_pages=50)
MAX_BYTES = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return decompression_bomb_png()


def test_empty_body_is_bad_input() -> None:
    with pytest.raises(BadInput, match="empty"):
        open_document(b"", "image/png", LIMITS, MAX_BYTES)


def test_truncated_png_is_bad_input() -> None:
    document = open_document(truncated(SAMPLE_PAGE.read_bytes()), "image/png", LIMITS, MAX_BYTES)
    with pytest.raises(BadInput, match="corrupt or truncated"):
        document.render(0)


def test_decompression_bomb_refused_before_decoding(bomb: bytes) -> None:
    assert len(bomb) < 2_000_000
    document = open_document(bomb, "image/png", LIMITS, MAX_BYTES)
    with pytest.raises(PayloadTooLarge, match="30000x30000"):
        document.render(0)


def test_text_file_named_png_is_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType, match="text"):
        open_document(b"just some notes, not an image\n", "image/png", LIMITS, MAX_BYTES)


def test_declared_type_must_match_bytes() -> None:
    with pytest.raises(UnsupportedMediaType, match="says image/jpeg"):
        open_document(SAMPLE_PAGE.read_bytes(), "image/jpeg", LIMITS, MAX_BYTES)
    with pytest.raises(UnsupportedMediaType, match="text/plain"):
        open_document(SAMPLE_PAGE.read_bytes(), "text/plain", LIMITS, MAX_BYTES)


def test_pdf_page_range_out_of_bounds() -> None:
    document = open_document(blank_pdf(3), "application/pdf", LIMITS, MAX_BYTES)
    with pytest.raises(BadOptions, match="page 5 is out of range: the document has 3 page"):
        document.select(parse_page_ranges("2,5"))


def test_thousands_of_pages_need_a_page_range() -> None:
    document = open_document(blank_pdf(2000, 72, 72), "application/pdf", LIMITS, MAX_BYTES)
    assert document.page_count == 2000
    with pytest.raises(PayloadTooLarge, match="2000 pages requested but at most 50"):
        document.select(None)
    assert document.select(parse_page_ranges("1999-2000")) == [1998, 1999]


def test_corrupt_pdf_is_bad_input() -> None:
    data = blank_pdf(2)
    with pytest.raises(BadInput, match="PDF cannot be opened"):
        open_document(data[:200], "application/pdf", LIMITS, MAX_BYTES)


def test_body_over_limit_is_too_large() -> None:
    with pytest.raises(PayloadTooLarge, match="POST /v1/uploads"):
        open_document(b"\x89PNG\r\n\x1a\n" + b"0" * 2048, "image/png", LIMITS, 1024)


@pytest.mark.parametrize("spec", ["0", "3-1", "a-b", "1,,2", "-4"])
def test_bad_page_ranges(spec: str) -> None:
    with pytest.raises(BadOptions):
        parse_page_ranges(spec)


def test_page_ranges_parse() -> None:
    assert parse_page_ranges("1-3,7") == [0, 1, 2, 6]
    assert parse_page_ranges(" 2 , 2-3 ") == [1, 2]
    assert parse_page_ranges(None) is None


@pytest.mark.parametrize(
    ("fmt", "media_type"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("TIFF", "image/tiff")]
)
def test_supported_image_formats_decode(fmt: str, media_type: str) -> None:
    image = Image.open(SAMPLE_PAGE).convert("RGB").resize((400, 560))
    document = open_document(image_bytes(image, fmt), media_type, LIMITS, MAX_BYTES)
    page = document.render(0)
    assert page.size == (400, 560)


def test_multi_frame_tiff_and_pdf_page_counts() -> None:
    frames = [Image.new("RGB", (200, 100), colour) for colour in ("white", "grey", "black")]
    tiff = image_bytes(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    assert open_document(tiff, "image/tiff", LIMITS, MAX_BYTES).page_count == 3
    pdf = open_document(pdf_from_images(frames), "application/pdf", LIMITS, MAX_BYTES)
    assert pdf.page_count == 3
    assert pdf.render(2).image.mean() < 10  # the black page


def test_every_tiff_frame_is_checked_before_decoding() -> None:
    """A small first frame must not let a huge later one through the pixel limit (issue 17)."""
    small, huge = Image.new("L", (100, 100), 255), Image.new("L", (4000, 4000), 255)
    tiff = image_bytes(small, "TIFF", save_all=True, append_images=[huge], compression="tiff_deflate")
    assert len(tiff) < 100_000  # a tiny upload that would decode to 16 M pixels
    limits = DecodeLimits(max_pixels=1_000_000, max_pages=50)
    document = open_document(tiff, "image/tiff", limits, MAX_BYTES)
    assert document.render(0).size == (100, 100)
    with pytest.raises(PayloadTooLarge, match="page 2 is 4000x4000"):
        document.render(1)


# ---- the same inputs over real HTTP: status codes and the JSON error body --------------------


@pytest.fixture(scope="module")
def server(model_store: Path):  # type: ignore[no-untyped-def]
    from docfn_testkit.servers import DocfnServer

    instance = DocfnServer({"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "ocr"}).start()
    yield instance
    instance.stop()


@pytest.mark.parametrize(
    ("body", "content_type", "query", "status", "code", "needle"),
    [
        (b"", "image/png", "", 400, "bad_input", "empty"),
        ("truncated", "image/png", "", 400, "bad_input", "truncated"),
        ("bomb", "image/png", "", 413, "too_large", "pixels"),
        (b"hello, I am text\n", "image/png", "", 415, "unsupported_media_type", "text"),
        ("pdf3", "application/pdf", "?pages=4-5", 422, "bad_options", "out of range"),
        ("sample", "image/png", "?min_confidence=2", 422, "bad_options", "min_confidence"),
        ("sample", "image/png", "?colour=blue", 422, "bad_options", "unknown option"),
        ("sample", "text/plain", "", 415, "unsupported_media_type", "text/plain"),
    ],
)
def test_http_errors(
    server, bomb: bytes, body, content_type: str, query: str, status: int, code: str, needle: str
) -> None:  # type: ignore[no-untyped-def]
    payloads = {
        "truncated": truncated(SAMPLE_PAGE.read_bytes()),
        "bomb": bomb,
        "pdf3": blank_pdf(3),
        "sample": SAMPLE_PAGE.read_bytes(),
    }
    data = payloads.get(body, body) if isinstance(body, str) else body
    with server.client() as client:
        response = client.post(f"/v1/ocr{query}", content=data, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert needle in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


def test_http_unknown_task_and_oversized_body(server) -> None:  # type: ignore[no-untyped-def]
    with server.client() as client:
        response = client.post(
            "/v1/formula", content=SAMPLE_PAGE.read_bytes(), headers={"content-type": "image/png"}
        )
        assert response.status_code == 404
        assert "not served here" in response.json()["error"]["message"]
        response = client.post("/v1/nonsense", content=b"x")
        assert response.status_code == 404
        too_big = b"\x89PNG\r\n\x1a\n" + b"\0" * (51 * 1024 * 1024)
        response = client.post("/v1/ocr", content=too_big, headers={"content-type": "image/png"})
        assert response.status_code == 413
        assert "/v1/uploads" in response.json()["error"]["message"]


def _requests_counted(metrics_text: str, status: str) -> float:
    pattern = rf'^docfn_requests_total\{{status="{status}",task="ocr"\}} (\S+)$'
    return sum(float(m) for m in re.findall(pattern, metrics_text, flags=re.MULTILINE))


def test_starlette_refusals_are_counted_with_the_status_sent(server) -> None:  # type: ignore[no-untyped-def]
    """Two files where one is allowed: Starlette answers 400, and the metrics say 400, not 500."""
    page = SAMPLE_PAGE.read_bytes()
    with server.client() as client:
        before = client.get("/metrics").text
        response = client.post(
            "/v1/ocr", files=[("file", ("a.png", page, "image/png")), ("file", ("b.png", page, "image/png"))]
        )
        after = client.get("/metrics").text
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_input"
    assert _requests_counted(after, "400") == _requests_counted(before, "400") + 1
    assert _requests_counted(after, "500") == _requests_counted(before, "500")
