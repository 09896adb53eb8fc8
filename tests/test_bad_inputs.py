"""Bad input gets a clear error with the right status, through the core and over real HTTP."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageFile, WebPImagePlugin

from docfn.core.documents import DecodeLimits, open_document, parse_page_ranges
from docfn.core.errors import BadInput, BadOptions, PayloadTooLarge, UnsupportedMediaType
from docfn_testkit.docgen import pdf_from_images
from docfn_testkit.inputs import (
    animated_webp_bomb,
    apng_bomb,
    blank_pdf,
    decompression_bomb_png,
    gif_bomb,
    image_bytes,
    truncated,
)
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
    with pytest.raises(PayloadTooLarge, match="30000x30000"):
        open_document(bomb, "image/png", LIMITS, MAX_BYTES).render(0)


# ---- every decoder bounded: no frame over the limit reaches a decoder --------------------------

SMALL_LIMITS = DecodeLimits(max_pixels=1_000_000, max_pages=50)


@pytest.fixture
def decoders_watched(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """Every decode Pillow and pdfium start, by size, failing the test if one is over the limit:
    ``ImageFile.load`` (every file decoder, APNG's and GIF's seeks included), WebP's own ``load``
    and its animation decoder (which allocates the canvas when created), and pdfium's render."""
    decoded: list[tuple[int, int]] = []
    limit = SMALL_LIMITS.max_pixels

    def watch(size: tuple[int, int], what: str) -> None:
        decoded.append(size)
        assert size[0] * size[1] <= limit, f"{what} decoded {size[0]}x{size[1]} pixels"

    def guarded(load: Callable[..., object], what: str) -> Callable[..., object]:
        def load_watched(self: Image.Image) -> object:
            watch(self.size, what)
            return load(self)

        return load_watched

    monkeypatch.setattr(ImageFile.ImageFile, "load", guarded(ImageFile.ImageFile.load, "ImageFile.load"))
    monkeypatch.setattr(
        WebPImagePlugin.WebPImageFile, "load", guarded(WebPImagePlugin.WebPImageFile.load, "WebP load")
    )
    real_decoder = WebPImagePlugin._webp.WebPAnimDecoder

    def anim_decoder(data: bytes) -> object:
        decoder = real_decoder(data)  # the canvas is allocated here: it must never be a bomb's
        watch(decoder.get_info()[0], "WebPAnimDecoder")
        return decoder

    monkeypatch.setattr(WebPImagePlugin._webp, "WebPAnimDecoder", anim_decoder)
    real_render = pdfium.PdfPage.render

    def render(page: pdfium.PdfPage, scale: float = 1, **kwargs: object) -> object:
        width, height = page.get_size()
        watch((round(width * scale), round(height * scale)), "pdfium render")
        return real_render(page, scale=scale, **kwargs)

    monkeypatch.setattr(pdfium.PdfPage, "render", render)
    yield decoded


def _mpo(*sizes: tuple[int, int]) -> bytes:
    frames = [Image.new("RGB", size, "white") for size in sizes]
    return image_bytes(frames[0], "MPO", save_all=True, append_images=frames[1:])


@pytest.mark.parametrize(
    ("name", "make", "media_type", "page", "needle"),
    [
        # The APNG of the issue: page 2 is composited onto a decoded 20000x20000 page 1.
        ("apng", lambda: apng_bomb(), "image/png", 1, "20000x20000"),
        ("apng-page-1", lambda: apng_bomb(), "image/png", 0, "20000x20000"),
        ("animated-webp", lambda: animated_webp_bomb(), "image/webp", 1, "20000x20000"),
        ("animated-webp-page-1", lambda: animated_webp_bomb(16_000, 16_000), "image/webp", 0, "16000x16000"),
        (
            "mpo-second-picture",
            lambda: _mpo((100, 100), (2000, 2000)),
            "image/jpeg",
            1,
            "page 2 is 2000x2000",
        ),
        ("pdf-page-at-dpi", lambda: _pdf_big_second_page(), "application/pdf", 1, "PDF page 2 is"),
    ],
)
def test_every_decoder_checks_the_frame_before_decoding_it(
    decoders_watched: list[tuple[int, int]],
    name: str,
    make: Callable[[], bytes],
    media_type: str,
    page: int,
    needle: str,
) -> None:
    data = make()
    with pytest.raises(PayloadTooLarge, match=needle):
        document = open_document(data, media_type, SMALL_LIMITS, MAX_BYTES)
        document.render(page)
    assert all(w * h <= SMALL_LIMITS.max_pixels for w, h in decoders_watched)


def _pdf_big_second_page() -> bytes:
    """Page 1 is 1 inch square; page 2 is 20 inches square: 3000x3000 pixels at 150 DPI."""
    document = pdfium.PdfDocument.new()
    document.new_page(72, 72)
    document.new_page(1440, 1440)
    buffer = io.BytesIO()
    document.save(buffer)
    document.close()
    return buffer.getvalue()


def test_the_watched_decoders_still_decode_what_is_allowed(decoders_watched: list[tuple[int, int]]) -> None:
    """The guard above sees real decodes: small frames of each format go through it and decode."""
    cases = [
        (apng_bomb(40, 30), "image/png", 1),
        (animated_webp_bomb(40, 30), "image/webp", 1),
        (_mpo((100, 100), (200, 100)), "image/jpeg", 1),
        (_pdf_big_second_page(), "application/pdf", 0),
    ]
    for data, media_type, page in cases:
        assert open_document(data, media_type, SMALL_LIMITS, MAX_BYTES).render(page).image.size > 0
    assert (40, 30) in decoders_watched and (200, 100) in decoders_watched and (150, 150) in decoders_watched


def test_gif_is_refused_unread() -> None:
    with pytest.raises(UnsupportedMediaType, match="a GIF, not a PNG"):
        open_document(gif_bomb(), None, LIMITS, MAX_BYTES)


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


def _peak_rss(pid: int) -> int:
    """The process's resident high-water mark (VmHWM, bytes): what a decoded bomb would raise."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


HOSTILE = [  # (name, body, content type, query, status, code)
    ("png-bomb", decompression_bomb_png, "image/png", "", 413, "too_large"),
    ("apng-bomb-page-2", apng_bomb, "image/png", "?pages=2", 413, "too_large"),
    ("apng-bomb", apng_bomb, "image/png", "", 413, "too_large"),
    ("animated-webp-bomb", animated_webp_bomb, "image/webp", "?pages=2", 413, "too_large"),
    ("gif-bomb", gif_bomb, "application/octet-stream", "", 415, "unsupported_media_type"),
    ("pdf-page-bomb", lambda: blank_pdf(1, 14_400, 14_400), "application/pdf", "", 413, "too_large"),
]


def test_bombs_over_http_are_refused_undecoded_and_leave_nothing_behind(
    model_store: Path, redis_binary: str | None, tmp_path: Path
) -> None:
    """Each bomb is a clean JSON 4xx; the server's memory high-water mark barely moves (any of them
    decoded is hundreds of MB), nothing reaches the cache or its temporary directory, and it keeps
    serving: the real page afterwards is answered, and cached, which shows the cache was live."""
    from docfn_testkit.servers import DocfnServer, RedisServer

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    redis = RedisServer(redis_binary, tmp_path).start()
    env = {
        "DOCFN_MODEL_STORE": str(model_store),
        "DOCFN_TASKS": "ocr",
        "DOCFN_REDIS_URL": redis.url,
        "TMPDIR": str(scratch),
    }
    instance = DocfnServer(env).start()
    try:
        assert instance.process is not None
        with instance.client() as client:
            assert client.get("/healthz").status_code == 200
            files_before = set(scratch.rglob("*"))
            peak_before = _peak_rss(instance.process.pid)
            for name, make, content_type, query, status, code in HOSTILE:
                response = client.post(
                    f"/v1/ocr{query}", content=make(), headers={"content-type": content_type}
                )
                assert response.status_code == status, (name, response.text)
                error = response.json()["error"]
                assert error["code"] == code, name
                assert error["request_id"] == response.headers["x-request-id"]
            growth = _peak_rss(instance.process.pid) - peak_before
            assert growth < 100 * 1024 * 1024, f"peak RSS grew {growth / 2**20:.0f} MB while refusing bombs"
            assert set(scratch.rglob("*")) == files_before
            assert redis.client().dbsize() == 0
            page = client.post(
                "/v1/ocr", content=SAMPLE_PAGE.read_bytes(), headers={"content-type": "image/png"}
            )
            assert page.status_code == 200, page.text
            assert redis.client().dbsize() > 0
    finally:
        instance.stop()
        redis.stop()


@pytest.mark.parametrize(
    ("fmt", "options"), [("PNG", {}), ("WEBP", {"lossless": True}), ("WEBP", {"quality": 50}), ("JPEG", {})]
)
def test_canvas_sizes_read_from_headers_agree_with_pillow(fmt: str, options: dict) -> None:
    from docfn.core.image_headers import canvas_size

    data = image_bytes(Image.new("RGB", (321, 123), "white"), fmt, **options)
    expected = None if fmt == "JPEG" else (321, 123)  # JPEG's decoder reports its size before allocating
    assert canvas_size(data, fmt.lower()) == expected
