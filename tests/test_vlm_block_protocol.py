"""MinerU2.5's block protocol as pure code: the layout answer, OTSL tables, LaTeX cleanup and image
analysis, on hand-written answers in the model's own format, well-formed and malformed."""

from __future__ import annotations

from concurrent.futures import Future

from PIL import Image

from docfn.core.deadline import working_until
from docfn.tasks.vlm.blocks import VlmCall
from docfn.tasks.vlm.generation import Generation
from docfn.tasks.vlm.image_analysis import markdown_table_ok, parse_image_analysis
from docfn.tasks.vlm.latex import clean_latex
from docfn.tasks.vlm.mineru import (
    LAYOUT_KNOBS,
    block_crop,
    fit_for_vision,
    knobs_for,
    parse_layout,
    prompt_for,
)
from docfn.tasks.vlm.otsl import otsl_to_table
from docfn.tasks.vlm.reader import BlockReader

# What MinerU2.5 answers "\nLayout Detection:" for a paper's first page (reading order).
LAYOUT = (
    "<|box_start|>112 64 889 102<|box_end|><|ref_start|>doc_title<|ref_end|><|rotate_up|>\n"
    "<|box_start|>102 131 492 412<|box_end|><|ref_start|>text<|ref_end|><|rotate_up|>\n"
    "<|box_start|>508 131 897 288<|box_end|><|ref_start|>text<|ref_end|><|rotate_up|>txt_contd_tgt\n"
    "<|box_start|>300 430 640 470<|box_end|><|ref_start|>equation<|ref_end|><|rotate_up|>\n"
    "<|box_start|>850 435 890 465<|box_end|><|ref_start|>formula_number<|ref_end|><|rotate_up|>\n"
    "<|box_start|>110 500 890 540<|box_end|><|ref_start|>table_caption<|ref_end|><|rotate_up|>\n"
    "<|box_start|>110 545 890 760<|box_end|><|ref_start|>table<|ref_end|><|rotate_up|>\n"
    "<|box_start|>20 300 50 700<|box_end|><|ref_start|>aside_text<|ref_end|><|rotate_left|>\n"
    "<|box_start|>480 960 520 980<|box_end|><|ref_start|>page_number<|ref_end|><|rotate_up|>"
)


def test_layout_answer_to_blocks_in_reading_order() -> None:
    blocks = parse_layout(LAYOUT)
    assert [b.type for b in blocks] == [
        "doc_title", "text", "text", "equation", "formula_number", "table_caption", "table",
        "aside_text", "page_number",
    ]  # fmt: skip
    assert blocks[0].bbox == (0.112, 0.064, 0.889, 0.102)
    assert [b.continues for b in blocks[1:3]] == [False, True]
    assert blocks[7].angle == 270 and blocks[0].angle == 0


def test_malformed_layout_answers_keep_what_parses() -> None:
    answer = (
        "garbage before<|box_start|>10 10 500 200<|box_end|><|ref_start|>text<|ref_end|>"
        "<|box_start|>10 10 10 200<|box_end|><|ref_start|>text<|ref_end|>"  # no area
        "<|box_start|>10 10 1200 200<|box_end|><|ref_start|>text<|ref_end|>"  # off the grid
        "<|box_start|>10 300 500 400<|box_end|><|ref_start|>sticker<|ref_end|>"  # unknown type
        "<|box_start|>11 11 500 200<|box_end|><|ref_start|>text<|ref_end|>"  # duplicate (IoU > 0.9)
        "<|box_start|>600 500 300 700<|box_end|><|ref_start|>UNKNOWN<|ref_end|>"  # swapped corners
        "<|box_start|>10 800 500 9"  # cut at max tokens
    )
    blocks = parse_layout(answer)
    assert [(b.type, b.bbox) for b in blocks] == [
        ("text", (0.01, 0.01, 0.5, 0.2)),
        ("image", (0.3, 0.5, 0.6, 0.7)),
    ]
    assert parse_layout("") == [] and parse_layout("no blocks here at all") == []


def test_prompts_and_knobs_are_minerus() -> None:
    assert prompt_for("table") == "\nTable Recognition:"
    assert prompt_for("equation") == "\nFormula Recognition:"
    assert prompt_for("chart") == prompt_for("image") == "\nImage Analysis:"
    assert prompt_for("paragraph_title") == prompt_for("text") == "\nText Recognition:"
    assert knobs_for("table").frequency_penalty == 0.005 and knobs_for("table").presence_penalty == 1.0
    assert knobs_for("equation").frequency_penalty == 0.05
    assert LAYOUT_KNOBS.presence_penalty == 0.0 and LAYOUT_KNOBS.no_repeat_ngram_size == 100


def test_crops_are_cut_from_the_full_page_and_turned_upright() -> None:
    page = Image.new("RGB", (2000, 1000), "white")
    (block,) = parse_layout(
        "<|box_start|>100 100 300 900<|box_end|><|ref_start|>text<|ref_end|><|rotate_right|>"
    )
    crop = block_crop(page, block)
    assert crop.size == (800, 400)  # 400 x 800 at full resolution, turned by 90 degrees
    # A hairline strip is padded to 50:1 and a tiny crop scaled to 28 px on its short side.
    assert fit_for_vision(Image.new("RGB", (1000, 4))).size == (1400, 28)  # 1000 x 20, then x 1.4
    assert fit_for_vision(Image.new("RGB", (10, 14))).size == (28, 40)


def html(otsl: str) -> str:
    return otsl_to_table(otsl).to_html()


def test_otsl_plain_grid() -> None:
    assert html("<fcel>Name<fcel>Qty<nl><fcel>apples<fcel>3<nl><fcel>pears<ecel><nl>") == (
        "<table><tr><td>Name</td><td>Qty</td></tr><tr><td>apples</td><td>3</td></tr>"
        "<tr><td>pears</td><td></td></tr></table>"
    )


def test_otsl_spans() -> None:
    # A header cell over two columns, a row header over two rows, and a 2 x 2 block.
    otsl = (
        "<fcel>Region<fcel>2023<lcel><fcel>2024<lcel><nl>"
        "<ucel><fcel>H1<fcel>H2<fcel>H1<fcel>H2<nl>"
        "<fcel>North<fcel>n/a<lcel><fcel>12<fcel>14<nl>"
        "<fcel>South<ucel><xcel><fcel>9<fcel>11<nl>"
    )
    table = otsl_to_table(otsl)
    assert (table.rows, table.cols) == (4, 5)
    assert html(otsl) == (
        '<table><tr><td rowspan="2">Region</td><td colspan="2">2023</td><td colspan="2">2024</td></tr>'
        "<tr><td>H1</td><td>H2</td><td>H1</td><td>H2</td></tr>"
        '<tr><td>North</td><td rowspan="2" colspan="2">n/a</td><td>12</td><td>14</td></tr>'
        "<tr><td>South</td><td>9</td><td>11</td></tr></table>"
    )


def test_otsl_escapes_text_and_ignores_the_wrapper() -> None:
    assert html("<otsl><fcel>a < b & c<fcel>x<nl></otsl>") == (
        "<table><tr><td>a &lt; b &amp; c</td><td>x</td></tr></table>"
    )


def test_malformed_otsl_degrades_without_losing_text() -> None:
    # Ragged rows are padded; a merge token with nothing to merge into is a cell of its own; text
    # written after a merge token joins the cell covering it; a cut-off last row still counts.
    otsl = (
        "<lcel>orphan<fcel>A<fcel>B<fcel>C<nl>"
        "<fcel>1<lcel>more<nl>"
        "<ucel><fcel>2<fcel>3<fcel>4<fcel>5<nl>"
        "<fcel>cut"
    )
    table = otsl_to_table(otsl)
    assert (table.rows, table.cols) == (4, 5)
    texts = {(c.row, c.col): (c.text, c.rowspan, c.colspan) for c in table.cells}
    assert texts[(0, 0)] == ("orphan", 1, 1)
    assert texts[(1, 0)] == ("1 more", 1, 2)
    assert texts[(2, 0)] == ("", 1, 1)  # a ucel the cell above could not span into
    assert texts[(3, 0)] == ("cut", 1, 1)
    # Every slot is covered exactly once: the HTML grid is rectangular.
    covered = sorted((r, c) for cell in table.cells for r in range(cell.row, cell.row + cell.rowspan)
                     for c in range(cell.col, cell.col + cell.colspan))  # fmt: skip
    assert covered == sorted((r, c) for r in range(4) for c in range(5))
    # An answer with no OTSL at all is kept whole; an empty one is an empty table.
    assert [c.text for c in otsl_to_table("The model wrote prose.").cells] == ["The model wrote prose."]
    assert otsl_to_table("").cells == [] and otsl_to_table("").to_html() == "<table></table>"


def test_a_merge_that_would_make_a_non_rectangular_cell_stands_alone() -> None:
    # The lcel would join "a" (which spans down into its row) into an L shape: it is its own cell.
    table = otsl_to_table("<fcel>a<fcel>b<nl><ucel><lcel><nl>")
    spans = sorted((c.row, c.col, c.rowspan, c.colspan, c.text) for c in table.cells)
    assert spans == [(0, 0, 2, 1, "a"), (0, 1, 1, 1, "b"), (1, 1, 1, 1, "")]
    # A 2-D span shrinks to the rows that are merged all the way across.
    table = otsl_to_table("<fcel>a<lcel><nl><ucel><fcel>x<nl>")
    spans = sorted((c.row, c.col, c.rowspan, c.colspan, c.text) for c in table.cells)
    assert spans == [(0, 0, 1, 2, "a"), (1, 0, 1, 1, ""), (1, 1, 1, 1, "x")]


def test_latex_cleanup() -> None:
    assert clean_latex("\\[\nE = m c^{2}\n\\]") == "E = m c^{2}"
    assert clean_latex("$$a+b$$") == "a+b"
    assert clean_latex("\\begin{equation}x=1\\end{equation}") == "x=1"
    assert clean_latex("f \\coloneqq g") == "f := g"
    assert clean_latex("\\left( \\frac{a}{b} \\right) + \\left[ c") == "( \\frac{a}{b} ) + [ c"
    assert clean_latex("\\left( x \\right)") == "\\left( x \\right)"
    assert clean_latex("x^{2}} + \\frac{1}{{2}") == "x^{2} + \\frac{1}{2}"
    assert clean_latex("\\{ a \\}") == "\\{ a \\}"  # escaped braces are text
    assert clean_latex("  ") == ""


CHART = """<|class_start|>chart<|class_end|>
<|sub_class_start|>bar<|sub_class_end|>
<|caption_start|>Quarterly revenue by region, 2024<|caption_end|>
<|content_start|>
| Quarter | North | South |
| --- | --- | --- |
| Q1 | 12 | 9 |
| Q2 | 14 | 11 |
<|content_end|>"""


def test_image_analysis_of_a_chart() -> None:
    analysis = parse_image_analysis(CHART)
    assert (analysis.kind, analysis.sub_kind, analysis.complete) == ("chart", "bar", True)
    assert analysis.caption == "Quarterly revenue by region, 2024"
    assert analysis.content.splitlines()[2] == "| Q1 | 12 | 9 |"


def test_image_analysis_degrades() -> None:
    # A chart whose data table is broken loses the table, not the caption.
    broken = CHART.replace("| Q2 | 14 | 11 |", "| Q2 | 14 |")
    analysis = parse_image_analysis(broken)
    assert analysis.content == "" and analysis.caption.startswith("Quarterly")
    # Cut at max tokens inside the content: what was written is kept, and said to be incomplete.
    cut = parse_image_analysis(CHART.split("| Q2")[0])
    assert cut.complete is False and cut.content.endswith("| Q1 | 12 | 9 |")
    # A natural image: a caption and no content; an untagged answer is all content.
    photo = parse_image_analysis(
        "<|class_start|>natural_image<|class_end|><|caption_start|>A lighthouse at dusk<|caption_end|>"
    )
    assert (photo.kind, photo.caption, photo.content) == ("natural_image", "A lighthouse at dusk", "")
    assert parse_image_analysis("just words").content == "just words"
    assert parse_image_analysis("").kind == ""
    assert markdown_table_ok("| a | b |\n| --- | --- |\n| 1 | 2 |")
    assert not markdown_table_ok("| a | b |\n| 1 | 2 |")


class _Recording:
    """A generator that answers every call at once and records the deadline each submission carried."""

    def __init__(self) -> None:
        self.deadlines: list[float | None] = []

    def submit_many(self, calls: list[VlmCall], deadline: float | None) -> list[Future[Generation]]:
        self.deadlines.append(deadline)
        futures: list[Future[Generation]] = [Future() for _ in calls]
        for future in futures:
            future.set_result(Generation([], "stop", 0, "x"))
        return futures


def test_block_reads_carry_the_deadline_of_the_request_they_work_for() -> None:
    """The service sets the request's deadline around its page loop; every VLM read passes it to the
    engine, which stops decoding the block once it has passed."""
    generator = _Recording()
    reader = BlockReader(generator, 8)  # type: ignore[arg-type]
    crop = Image.new("RGB", (64, 32), "white")
    with working_until(123.0):
        reader.text(crop)
        reader.layout(Image.new("RGB", (200, 200), "white"))
        reader.submit([(crop, "table"), (crop, "equation")])
    reader.formula(crop)
    assert generator.deadlines == [123.0, 123.0, 123.0, None]
