"""The detector's input size chosen per page by its text height: the estimate follows the text's
size on real rendered pages, and pages of one document at different DPIs reach the detector with
their text at about the same height."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from docfn.tasks.ocr.detect import TextDetectorConfig, _resize_for_detection, estimate_line_height
from docfn_testkit.docgen import two_column_page

PARAGRAPH = (
    "The detector reads a page at one size chosen for it: text lines of about the same height"
    " whatever the page's resolution, so small print is not shrunk out of reach and large print"
    " costs no more than it needs."
)


def _page(scale: float) -> np.ndarray:
    page = two_column_page("Text height", [PARAGRAPH] * 4, [PARAGRAPH] * 4)
    if scale != 1.0:
        page = page.resize((round(page.width * scale), round(page.height * scale)), Image.Resampling.BILINEAR)
    return np.asarray(page)


def test_the_estimate_follows_the_text_size() -> None:
    at_150 = estimate_line_height(_page(1.0))  # DejaVu Serif at 22 px: ink rows about 20-26 px
    assert 18 <= at_150 <= 28
    at_300 = estimate_line_height(_page(2.0))
    assert abs(at_300 / at_150 - 2.0) <= 0.25
    assert estimate_line_height(np.full((800, 600, 3), 255, dtype=np.uint8)) == 0.0


def test_pages_at_any_dpi_reach_the_detector_with_text_of_one_height() -> None:
    config = TextDetectorConfig(max_side_len=1024, text_height=12.0)
    for scale in (0.75, 1.0, 2.0):
        page = _page(scale)
        resized = _resize_for_detection(page, config)
        on_input = estimate_line_height(page) * resized.shape[0] / page.shape[0]
        assert 10.0 <= on_input <= 14.0, (scale, on_input)
        assert resized.shape[0] % 32 == 0 and resized.shape[1] % 32 == 0


def test_a_page_without_lines_falls_back_to_the_longest_side(devset: Path) -> None:
    config = TextDetectorConfig(max_side_len=1024, text_height=12.0)
    blank = np.full((1754, 1241, 3), 255, dtype=np.uint8)
    assert max(_resize_for_detection(blank, config).shape[:2]) == 1024
    # Small inputs (a region, a photo of a label) are still upscaled to the shortest-side limit.
    small = np.asarray(Image.open(devset / "003.png").convert("RGB"))[:300, :500]
    assert min(_resize_for_detection(small, config).shape[:2]) == 736


def _small_print_page() -> np.ndarray:
    """The same A4 page size holding four half-size pages: print half the usual height."""
    half = Image.fromarray(_page(0.5))
    sheet = Image.new("RGB", (half.width * 2, half.height * 2), "white")
    for x in (0, half.width):
        for y in (0, half.height):
            sheet.paste(half, (x, y))
    return np.asarray(sheet)


def test_min_text_height_enlarges_only_small_print_beyond_the_cap() -> None:
    config = TextDetectorConfig(max_side_len=1024, min_text_height=10.0)
    ordinary = _page(1.0)  # lines about 13 px at the 1024-px cap: the cap stands
    assert max(_resize_for_detection(ordinary, config).shape[:2]) == 1024
    small = _small_print_page()  # lines about 6 px at the cap: enlarged until they reach 10 px
    resized = _resize_for_detection(small, config)
    on_input = estimate_line_height(small) * resized.shape[0] / small.shape[0]
    assert max(resized.shape[:2]) > 1024 and 9.0 <= on_input <= 11.5, (resized.shape, on_input)
    # Never beyond the page's own size, however small the print.
    tiny_print = TextDetectorConfig(max_side_len=1024, min_text_height=40.0)
    assert _resize_for_detection(small, tiny_print).shape[:2] == (1760, 1248)
