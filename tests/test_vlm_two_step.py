"""MinerU2.5's two-step page through parse, with a generator that speaks the real protocol: it
answers each prompt with what MinerU2.5 answers (scripted, deterministic), so the layout parsing,
cropping, per-block prompts and knobs, the assembly into content-list blocks and the Markdown are
asserted on content. The same generator reads parse's VLM blocks and table's VLM mode."""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

import docfn.tasks.vlm.loading as loading
from docfn.adapters.wiring import build_service, upload_processor
from docfn.core.settings import Settings
from docfn.packs.store import LocalPack
from docfn.service.upload_jobs import ObjectRef
from docfn.tasks.vlm.blocks import VlmCall
from docfn.tasks.vlm.model import Generation
from docfn.tasks.vlm.sampling import SamplingKnobs
from docfn_testkit import docgen
from docfn_testkit.crops import crop_png
from docfn_testkit.paths import DEVSET
from docfn_testkit.servers import S3Server
from docfn_testkit.tablegen import SAMPLE_TABLES, render_table

PAGE = DEVSET / "001.png"  # mathtools page 4: headings, prose, a ruled table, a display formula

LAYOUT = (
    "<|box_start|>243 193 690 209<|box_end|><|ref_start|>paragraph_title<|ref_end|><|rotate_up|>\n"
    "<|box_start|>243 316 837 370<|box_end|><|ref_start|>text<|ref_end|><|rotate_up|>\n"
    "<|box_start|>243 612 837 626<|box_end|><|ref_start|>text<|ref_end|><|rotate_up|>\n"
    "<|box_start|>243 627 837 643<|box_end|><|ref_start|>text<|ref_end|><|rotate_up|>txt_contd_tgt\n"
    "<|box_start|>487 700 595 728<|box_end|><|ref_start|>equation<|ref_end|><|rotate_up|>\n"
    "<|box_start|>800 702 830 726<|box_end|><|ref_start|>formula_number<|ref_end|><|rotate_up|>\n"
    "<|box_start|>243 552 773 566<|box_end|><|ref_start|>table_caption<|ref_end|><|rotate_up|>\n"
    "<|box_start|>243 568 773 608<|box_end|><|ref_start|>table<|ref_end|><|rotate_up|>\n"
    "<|box_start|>243 575 500 590<|box_end|><|ref_start|>text<|ref_end|><|rotate_up|>\n"  # in the table
    "<|box_start|>243 740 837 800<|box_end|><|ref_start|>chart<|ref_end|><|rotate_up|>\n"
    "<|box_start|>243 805 837 815<|box_end|><|ref_start|>list<|ref_end|><|rotate_up|>\n"
    "<|box_start|>260 805 837 810<|box_end|><|ref_start|>list_item<|ref_end|><|rotate_up|>\n"
    "<|box_start|>260 810 837 815<|box_end|><|ref_start|>list_item<|ref_end|><|rotate_up|>\n"
    "<|box_start|>530 885 547 895<|box_end|><|ref_start|>page_number<|ref_end|><|rotate_up|>"
)
TEXTS = [
    "3 Tools for mathematical typesetting",
    "Many of the tools shown in this manual can be turned on and off by setting a switch.",
    "In [1], Alexander R. Perlis describes some simple yet",
    "useful macros for use in math displays.",
    "(1)",
    "Table 1: Macros of mathtools",
    "- \\mathllap puts its argument in a zero-width box",
    "- \\mathclap centres it",
    "4",
]
EQUATION = "\\[\nX = \\sum_{1\\le i\\le j\\le n} X_{ij}\n\\]"
OTSL = "<fcel>\\mathllap<fcel>\\mathclap<nl><fcel>\\mathrlap<fcel>\\clap<nl><fcel>\\mathmbox<lcel><nl>"
CHART = (
    "<|class_start|>chart<|class_end|><|sub_class_start|>bar<|sub_class_end|>"
    "<|caption_start|>Macros by kind<|caption_end|>"
    "<|content_start|>| Kind | Count |\n| --- | --- |\n| lap | 3 |\n| box | 2 |<|content_end|>"
)
TABLE_HTML = (
    "<table><tr><td>\\mathllap</td><td>\\mathclap</td></tr><tr><td>\\mathrlap</td><td>\\clap</td></tr>"
    '<tr><td colspan="2">\\mathmbox</td></tr></table>'
)
MARKDOWN = f"""## 3 Tools for mathematical typesetting

Many of the tools shown in this manual can be turned on and off by setting a switch.

In [1], Alexander R. Perlis describes some simple yet useful macros for use in math displays.

$$
X = \\sum_{{1\\le i\\le j\\le n}} X_{{ij}} \\tag{{1}}
$$

Table 1: Macros of mathtools

{TABLE_HTML}

Macros by kind

| Kind | Count |
| --- | --- |
| lap | 3 |
| box | 2 |

- \\mathllap puts its argument in a zero-width box
- \\mathclap centres it

<!-- page number: 4 -->
"""


class ScriptedMinerU:
    """A :class:`VlmGenerator` answering as MinerU2.5 does: by prompt, in the order asked."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {
            "\nLayout Detection:": [LAYOUT],
            "\nText Recognition:": list(TEXTS),
            "\nFormula Recognition:": [EQUATION],
            "\nTable Recognition:": [OTSL],
            "\nImage Analysis:": [CHART],
        }
        self.calls: list[dict[str, Any]] = []
        self.batches: list[int] = []  # how many calls each submit_many held

    def generate(
        self,
        image: Image.Image | None,
        prompt: str,
        knobs: SamplingKnobs,
        max_tokens: int,
        deadline: float | None,
        system: str | None = None,
        skip_special_tokens: bool = True,
    ) -> Generation:
        assert image is not None
        self.calls.append(
            {"prompt": prompt, "size": image.size, "knobs": knobs, "raw": not skip_special_tokens}
        )
        queue = self.answers[prompt]
        text = queue.pop(0) if len(queue) > 1 or prompt != "\nLayout Detection:" else queue[0]
        return Generation(token_ids=[], finish_reason="stop", prompt_tokens=0, text=text)

    def submit_many(self, calls: list[VlmCall], deadline: float | None) -> list[Future[Generation]]:
        """Each call answered at once, in the order given (the engine decodes them together)."""
        self.batches.append(len(calls))
        futures: list[Future[Generation]] = []
        for call in calls:
            futures.append(Future())
            answer = self.generate(
                call.image, call.prompt, call.knobs, call.max_tokens, deadline, call.system,
                call.skip_special_tokens,
            )  # fmt: skip
            futures[-1].set_result(answer)
        return futures


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedMinerU:
    """The scripted generator in place of the pack's model, at the one place tasks load it."""
    generator = ScriptedMinerU()

    def load(pack: LocalPack, threads: int = 0, batching: object = None) -> ScriptedMinerU:
        return generator

    monkeypatch.setattr(loading, "load_engine", load)
    return generator


def test_two_step_page_as_a_job_through_uploads_and_the_s3_event(
    scripted: ScriptedMinerU, s3_server: S3Server, model_store: Path, vlm_tiny_pack: Path
) -> None:
    settings = Settings(
        tasks=["parse"],
        model_store=model_store,
        vlm_model_uri=str(vlm_tiny_pack),
        bucket="docfn-test",
        s3_endpoint_url=s3_server.endpoint_url,
    )
    service = build_service(settings)
    jobs = upload_processor(service)
    upload = jobs.create_upload("parse", "page.png", "image/png", {"engine": "vlm"})
    put = httpx.put(upload["upload"]["url"], content=PAGE.read_bytes(), headers=upload["upload"]["headers"])
    assert put.status_code == 200
    report = jobs.process(ObjectRef("docfn-test", upload["key"]))
    assert report.state == "succeeded", report
    status = jobs.job(upload["job_id"])
    markdown = httpx.get(status["result_urls"]["result.md"]).text
    assert markdown == MARKDOWN
    result = httpx.get(status["result_urls"]["result.json"]).json()["result"]
    blocks = result["content_list"]
    assert [b["type"] for b in blocks] == [
        "text",
        "text",
        "text",
        "equation",
        "table",
        "image",
        "list",
        "page_number",
    ]
    assert blocks[0]["text_level"] == 2 and blocks[0]["bbox"] == [243, 193, 690, 209]
    assert blocks[3]["latex"] == "X = \\sum_{1\\le i\\le j\\le n} X_{ij} \\tag{1}"
    assert (
        blocks[4]["table_caption"] == ["Table 1: Macros of mathtools"]
        and blocks[4]["table_body"] == TABLE_HTML
    )
    assert blocks[5]["sub_type"] == "chart" and blocks[5]["image_analysis"]["sub_kind"] == "bar"
    assert result["pages"][0]["text_source"] == "vlm"
    assert result["model"].endswith("+qwen2vl-tiny-random@1")

    # The protocol as MinerU's client speaks it: the page at 1036 x 1036 first, then each block
    # (containers and the text inside the table never), special tokens kept, MinerU's knobs.
    prompts = [c["prompt"] for c in scripted.calls]
    assert prompts[0] == "\nLayout Detection:" and scripted.calls[0]["size"] == (1036, 1036)
    assert prompts.count("\nText Recognition:") == len(TEXTS)
    assert all(c["raw"] for c in scripted.calls)
    # The layout alone, then every block of the page submitted at once (they decode together).
    assert scripted.batches == [1, len(scripted.calls) - 1]
    table_call = next(c for c in scripted.calls if c["prompt"] == "\nTable Recognition:")
    assert table_call["knobs"] == SamplingKnobs(1.0, 1.0, 0.005, 100)
    # Cut from the 1241 x 1754 page at full resolution, the box grown to whole pixels:
    # x 243..773 -> 301..960, y 568..608 -> 996..1067.
    assert Image.open(PAGE).size == (1241, 1754) and table_call["size"] == (960 - 301, 1067 - 996)


def table_page() -> bytes:
    """A page with a paragraph and a ruled table (the devset's pages have no table parse finds)."""
    page = Image.new("RGB", (1240, 1754), "white")
    draw, font = ImageDraw.Draw(page), docgen.font(22)
    for i, line in enumerate(docgen.wrap("Solar panels convert sunlight into electricity. " * 3, font, 1000)):
        draw.text((120, 150 + 32 * i), line, font=font, fill="black")
    page.paste(render_table(SAMPLE_TABLES["schedule"], "ruled"), (170, 400))
    return docgen.png_bytes(page)


def test_pipeline_sends_the_configured_block_types_to_the_vlm(
    scripted: ScriptedMinerU, model_store: Path, vlm_tiny_pack: Path
) -> None:
    for prompt in ("\nTable Recognition:", "\nFormula Recognition:", "\nImage Analysis:"):
        scripted.answers[prompt] = scripted.answers[prompt] * 10
    service = build_service(
        Settings(tasks=["parse"], model_store=model_store, vlm_model_uri=str(vlm_tiny_pack))
    )
    # A VLM pack configured and DOCFN_PARSE_VLM_BLOCKS unset: formulas and charts go to the VLM.
    maths = service.run("parse", PAGE.read_bytes(), "image/png").result
    equations = [b for b in maths["content_list"] if b["type"] == "equation"]
    assert equations and all(b["latex"] == "X = \\sum_{1\\le i\\le j\\le n} X_{ij}" for b in equations)
    # The page's formula crops went to the VLM together, ahead of the block loop (one submission,
    # which the recogniser's calls then read), not one by one.
    assert scripted.batches == [len(equations)]
    assert "$$\nX = \\sum_{1\\le i\\le j\\le n} X_{ij}\n$$" in maths["markdown"]
    figure = service.run("parse", (DEVSET / "010.png").read_bytes(), "image/png").result
    (image,) = [b for b in figure["content_list"] if b["type"] == "image"]
    assert image["sub_type"] == "chart" and "| lap | 3 |" in figure["markdown"]
    # ... tables only when listed.
    page = table_page()
    pipeline = service.run("parse", page, "image/png").result
    tables = [b["table_body"] for b in pipeline["content_list"] if b["type"] == "table"]
    assert len(tables) == 1 and tables[0] != TABLE_HTML and "Wednesday" in tables[0]
    routed = service.run("parse", page, "image/png", {"vlm_blocks": "table"}).result
    assert [b["table_body"] for b in routed["content_list"] if b["type"] == "table"] == [TABLE_HTML]
    # Nothing routed: the VLM pack is neither loaded for nor part of the result.
    none = service.run("parse", page, "image/png", {"vlm_blocks": ""}).result
    assert "qwen2vl" not in none["model"] and routed["model"].endswith("+qwen2vl-tiny-random@1")


def test_the_deployment_decides_the_default_blocks(model_store: Path, vlm_tiny_pack: Path) -> None:
    from docfn.tasks.parse.options import ParseOptions

    def resolved(**settings: Any) -> str | None:
        task = (
            build_service(Settings(tasks=["parse"], model_store=model_store, **settings)).task("parse").task
        )
        return task.resolve_options(ParseOptions()).vlm_blocks

    assert resolved() == ""  # no VLM pack configured: nothing goes to it
    assert resolved(vlm_model_uri=str(vlm_tiny_pack)) == "formula,chart"
    assert resolved(vlm_model_uri=str(vlm_tiny_pack), parse_vlm_blocks="chart,table") == "table,chart"
    assert resolved(parse_vlm_blocks="") == ""


def test_table_task_reads_otsl_with_the_vlm(
    scripted: ScriptedMinerU, model_store: Path, vlm_tiny_pack: Path
) -> None:
    page = Image.open(PAGE).convert("RGB").crop((296, 990, 964, 1072))
    service = build_service(
        Settings(tasks=["table"], model_store=model_store, vlm_model_uri=str(vlm_tiny_pack))
    )
    result = service.run("table", crop_png("table"), "image/png", {"recognizer": "vlm"}).result
    assert result["html"] == TABLE_HTML and result["tables"] == 1
    assert result["cells"][4]["colspan"] == 2
    # The VLM reads no cell boxes: each cell's box is its table's.
    assert {tuple(c["bbox"]) for c in result["cells"]} == {
        tuple(float(v) for v in result["pages"][0]["tables"][0]["bbox"])
    }
    assert page.size == (result["pages"][0]["width"], result["pages"][0]["height"])


def test_scripted_generation_is_a_real_generation() -> None:
    # The scripted answers travel in the same dataclass as the model's.
    assert "text" in {field.name for field in dataclasses.fields(Generation)}
