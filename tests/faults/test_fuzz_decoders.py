"""Property-based fuzzing (hypothesis) of every decoder and of the options parser: corrupted and
adversarial inputs end in docfn's own 4xx errors, never another exception (a 500) or a crash.

Seeds are small valid files of each format (PNG, APNG, JPEG, MPO, multi-frame TIFF, WebP, animated
WebP, PDF); hypothesis
flips bytes, truncates, inserts and overwrites header fields. Derandomised and bounded: the same
examples every run, a fixed number per format."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from docfn.core.documents import DecodeLimits, open_document, parse_page_ranges
from docfn.core.errors import DocfnError
from docfn.core.settings import ALL_TASKS
from docfn_testkit.inputs import animated_webp_bomb, apng_bomb, blank_pdf, image_bytes

LIMITS = DecodeLimits(max_pixels=4_000_000, max_pages=8, pdf_dpi=72)
MAX_BYTES = 1024 * 1024
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _seed_image(mode: str = "RGB") -> Image.Image:
    image = Image.new(mode, (48, 32), "white")
    for x in range(0, 48, 3):
        image.putpixel((x, x % 32), (0, 0, 0) if mode == "RGB" else 0)
    return image


def _tiff_frames() -> bytes:
    frames = [_seed_image(), _seed_image().resize((64, 16))]
    return image_bytes(frames[0], "TIFF", save_all=True, append_images=frames[1:])


SEEDS: dict[str, tuple[bytes, str]] = {
    "png": (image_bytes(_seed_image(), "PNG"), "image/png"),
    # The bombs' generators at a harmless size: mutations reach their canvas and frame headers.
    "apng": (apng_bomb(48, 32), "image/png"),
    "webp-animated": (animated_webp_bomb(48, 32), "image/webp"),
    "mpo": (
        image_bytes(_seed_image(), "MPO", save_all=True, append_images=[_seed_image().resize((64, 16))]),
        "image/jpeg",
    ),
    "jpeg": (image_bytes(_seed_image(), "JPEG", quality=80), "image/jpeg"),
    "tiff": (_tiff_frames(), "image/tiff"),
    "webp": (image_bytes(_seed_image(), "WEBP"), "image/webp"),
    "pdf": (blank_pdf(2, 200, 100), "application/pdf"),
}


def decode_everything(data: bytes, declared: str | None) -> None:
    """What the service does with a body: open it, select every page, render each one."""
    try:
        document = open_document(data, declared, LIMITS, MAX_BYTES)
        try:
            for index in document.select(None):
                document.render(index)
        finally:
            document.close()
    except DocfnError as exc:  # docfn's own refusal: must be a client error (4xx), never a 5xx
        assert 400 <= exc.status < 500, (exc.status, exc.message)


@st.composite
def corrupted(draw: st.DrawFn, seed: bytes) -> bytes:
    """The seed with a few mutations: byte flips, an overwritten run (e.g. a size field), an
    insertion, a deletion, or a truncation."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip":
            data[position] ^= draw(st.integers(1, 255))
        elif kind == "overwrite":  # e.g. width/height/offset fields: 0, 0xFF.., or random
            run = draw(
                st.sampled_from([b"\x00" * 4, b"\xff" * 4, b"\x7f\xff\xff\xff"])
                | st.binary(min_size=1, max_size=8)
            )
            data[position : position + len(run)] = run
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 64))]
        else:
            del data[position:]
    return bytes(data)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_seed_decodes(fmt: str) -> None:
    data, declared = SEEDS[fmt]
    document = open_document(data, declared, LIMITS, MAX_BYTES)
    assert [document.render(i).size for i in document.select(None)]
    document.close()


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_corrupted_files_give_only_client_errors(fmt: str) -> None:
    seed, declared = SEEDS[fmt]

    @FUZZ
    @given(data=corrupted(seed), declare=st.booleans())
    def check(data: bytes, declare: bool) -> None:
        decode_everything(data, declared if declare else None)

    check()


@FUZZ
@given(
    prefix=st.sampled_from(
        [
            b"\x89PNG\r\n\x1a\n",
            b"\xff\xd8\xff",
            b"II*\x00",
            b"MM\x00*",
            b"%PDF-1.7\n",
            b"GIF89a",
            b"RIFF\x00\x00\x00\x00WEBPVP8X",
            b"",
        ]
    ),
    body=st.binary(max_size=2048),
    declared=st.sampled_from([None, "image/png", "application/pdf", "text/plain", "image/webp"]),
)
def test_random_bytes_behind_magic_numbers(prefix: bytes, body: bytes, declared: str | None) -> None:
    decode_everything(prefix + body, declared)


def _option_values() -> st.SearchStrategy[Any]:
    text = st.text(string.printable + "éß\u202e\x00", max_size=40)
    numbers = st.one_of(st.integers(-(10**12), 10**12), st.floats(allow_nan=True)).map(str)
    return st.one_of(text, numbers, st.sampled_from(["true", "false", "1-3,7", "0", "-1", "1e309", "nan"]))


@FUZZ
@given(data=st.data())
def test_options_parser_refuses_with_bad_options_only(data: st.DataObject) -> None:
    from docfn.tasks.contract import validate_options
    from docfn.tasks.registry import implemented_tasks, options_model

    task = data.draw(st.sampled_from([t for t in ALL_TASKS if t in implemented_tasks()]))
    model = options_model(task)
    keys = st.one_of(st.sampled_from(sorted(model.model_fields)), st.text(max_size=12))
    raw = data.draw(st.dictionaries(keys, _option_values(), max_size=4))
    try:
        validate_options(model, raw, task)
    except DocfnError as exc:
        assert exc.status == 422 and exc.code == "bad_options", exc


@FUZZ
@given(spec=st.one_of(st.text(max_size=40), st.text("0123456789-, ", max_size=40)))
def test_page_ranges_parse_or_refuse(spec: str) -> None:
    try:
        pages = parse_page_ranges(spec)
    except DocfnError as exc:
        assert exc.status == 422
    else:
        assert pages is None or (pages == sorted(set(pages)) and all(p >= 0 for p in pages))
