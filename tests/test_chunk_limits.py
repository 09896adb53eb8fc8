"""parse's retrieval chunks never exceed ``chunk_tokens``, for any text, limit and overlap (hypothesis).

The overlap tail of one chunk once opened the next without the next sentence being re-checked against
the limit (an 84-token chunk at ``chunk_tokens=80``). Derandomised: the same examples every run."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docfn.core.sentences import token_count
from docfn.tasks.parse.blocks import to_markdown
from docfn.tasks.parse.chunks import chunk_markdown

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

WORDS = st.sampled_from(["data", "model", "page", "x", "Table", "42", "e.g.", "layout", "retrieval"])
CJK = st.text(alphabet="文档解析模型页表格", min_size=1, max_size=4)
# Sentences of 1-40 tokens, English or Chinese, ending as the sentence splitter expects.
SENTENCE = st.one_of(
    st.lists(WORDS, min_size=1, max_size=40).map(lambda words: " ".join(words).capitalize() + "."),
    st.lists(CJK, min_size=1, max_size=10).map(lambda parts: "".join(parts) + "。"),
)
PARAGRAPH = st.lists(SENTENCE, min_size=1, max_size=8).map(" ".join)


@st.composite
def blocks(draw: st.DrawFn) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []
    for page, text in enumerate(draw(st.lists(PARAGRAPH, min_size=1, max_size=12))):
        block: dict[str, Any] = {"type": "text", "text": text, "page_idx": page // 4, "bbox": [0, 0, 10, 10]}
        level = draw(st.sampled_from([0, 0, 0, 1, 2]))
        if level:
            block["text_level"] = level
        made.append(block)
    return made


@st.composite
def limits(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(min_value=2, max_value=120))
    return size, draw(st.integers(min_value=0, max_value=size - 1))


@PROPERTY
@given(blocks(), limits())
def test_no_chunk_exceeds_its_limit(made: list[dict[str, Any]], limit: tuple[int, int]) -> None:
    size, overlap = limit
    markdown = to_markdown(made)
    chunks = chunk_markdown(made, lambda path: path, markdown, size, overlap)
    for chunk in chunks:
        assert chunk["tokens"] <= size, (chunk, size, overlap)
        assert token_count(chunk["text"]) <= size, (chunk, size, overlap)
        assert chunk["overlap"] <= len(chunk["text"])
    # Shrinking an overlap never loses text: less their overlaps, the chunks are the Markdown.
    assert "".join(c["text"][c["overlap"] :] for c in chunks) == markdown


def test_the_reported_case_an_overlap_tail_plus_a_long_sentence() -> None:
    """20 tokens of overlap, then a 64-token sentence: 84 tokens at a limit of 80, before the fix."""
    first = " ".join(["Alpha"] * 60) + ". " + " ".join(["Beta"] * 20) + "."
    second = " ".join(["Gamma"] * 64) + "."
    made = [{"type": "text", "text": f"{first} {second}", "page_idx": 0, "bbox": [0, 0, 1, 1]}]
    markdown = to_markdown(made)
    chunks = chunk_markdown(made, lambda path: path, markdown, 80, 20)
    # The 20-token Beta sentence no longer repeats: with it the second chunk would be 84 tokens.
    assert [c["tokens"] for c in chunks] == [80, 64]
    assert chunks[1]["overlap"] == 0
