"""MinerU's decoding knobs and Qwen2-VL's resize rule, on explicit numbers (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from docfn.core.errors import BadInput
from docfn.tasks.vlm.preprocess import smart_resize
from docfn.tasks.vlm.sampling import SamplingKnobs, adjust_logits, banned_by_ngrams


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits_of_seen_tokens() -> None:
    logits = np.array([2.0, -2.0, 1.0, 4.0], dtype=np.float32)
    out = adjust_logits(logits, np.array([0]), [1], SamplingKnobs(repetition_penalty=2.0))
    assert out.tolist() == [1.0, -4.0, 1.0, 4.0]
    assert logits.tolist() == [2.0, -2.0, 1.0, 4.0]  # the caller's logits are left alone


def test_frequency_and_presence_penalties_count_output_tokens_only() -> None:
    logits = np.zeros(4, dtype=np.float32)
    knobs = SamplingKnobs(frequency_penalty=0.5, presence_penalty=1.0)
    out = adjust_logits(logits, np.array([3, 3, 3]), [1, 1, 2], knobs)
    assert out.tolist() == [0.0, -2.0, -1.5, 0.0]


def test_no_repeat_ngram_bans_the_token_that_would_repeat_an_output_ngram() -> None:
    output = [5, 6, 7, 5, 6]
    assert banned_by_ngrams(output, 3) == {7}
    assert banned_by_ngrams(output, 2) == {7}  # "6 ->" was followed by 7
    assert banned_by_ngrams(output, 6) == set()  # longer than anything generated
    assert banned_by_ngrams([1, 2], 1) == {1, 2}
    logits = np.zeros(8, dtype=np.float32)
    out = adjust_logits(logits, np.array([]), output, SamplingKnobs(no_repeat_ngram_size=3))
    assert out[7] == -np.inf and np.isfinite(np.delete(out, 7)).all()


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (1036, 1036, (1036, 1036)),  # MinerU's layout view, already on the grid
        (100, 300, (112, 308)),  # rounded to the nearest multiples of 28
        (10, 10, (56, 56)),  # raised to min_pixels
        (4000, 3000, (1204, 896)),  # lowered under max_pixels, aspect kept
    ],
)
def test_smart_resize_puts_both_sides_on_the_28_pixel_grid_within_the_pixel_bounds(
    height: int, width: int, expected: tuple[int, int]
) -> None:
    h, w = smart_resize(height, width, max_pixels=28 * 28 * 1400)
    assert (h, w) == expected
    assert h % 28 == 0 and w % 28 == 0 and 56 * 56 <= h * w <= 28 * 28 * 1400


def test_smart_resize_refuses_extreme_aspect_ratios_as_bad_input() -> None:
    with pytest.raises(BadInput, match="aspect ratio"):
        smart_resize(10, 2500)
