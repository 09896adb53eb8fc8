"""The summarize task end to end: text and devset pages (English, Chinese) through the service, the
CLI and a real ``docfn serve``; extractive sentences that are the source's own, spread over sections;
parse's cache entry reused; the OpenAI-compatible engine against a real local HTTP server, and its
failure falling back; map-reduce with progress; the 413 beyond the configured length."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docfn.adapters.wiring import build_service
from docfn.core.settings import Settings
from docfn.packs.manifest import verify_pack
from docfn.service.cache import MemoryCache
from docfn_testkit import pdfgen
from docfn_testkit.cli import run_docfn
from docfn_testkit.paths import devset_manifest
from docfn_testkit.servers import DocfnServer, RedisServer
from docfn_testkit.summarize import ARTICLE, ChatServer


def pages(category: str) -> list[str]:
    return [e["id"] for e in devset_manifest() if e["category"] == category]


@pytest.fixture(scope="module")
def service(model_store: Path):  # type: ignore[no-untyped-def]
    return build_service(Settings(tasks=["summarize"], model_store=model_store))


def test_markdown_summary_is_the_sources_sentences_over_several_sections(service) -> None:  # type: ignore[no-untyped-def]
    outcome = service.run("summarize", ARTICLE.encode(), "text/markdown", {"sentences": "3"})
    result = outcome.result
    assert result["engine"] == "extractive-lexrank" and result["fallback"] is None
    assert result["language"] == "en"
    assert len(result["sources"]) == 3
    for source in result["sources"]:
        assert ARTICLE[source["start"] : source["end"]] == source["text"]  # the source's own words
        assert " ".join(source["text"].split()) in result["summary"]
    assert len({tuple(s["heading_path"]) for s in result["sources"]}) >= 2
    assert result["source"]["sections"] == 4  # before the first heading, and three headed ones
    # The same text again: the cache answers.
    assert service.run("summarize", ARTICLE.encode(), "text/markdown", {"sentences": "3"}).cached


def test_chars_bounds_the_summary(service) -> None:  # type: ignore[no-untyped-def]
    result = service.run("summarize", ARTICLE.encode(), "text/markdown", {"chars": "150"}).result
    assert 0 < len(result["summary"]) <= 150
    with pytest.raises(Exception, match="not both"):
        service.run("summarize", ARTICLE.encode(), "text/markdown", {"chars": "150", "sentences": "2"})


def test_chinese_text(service, devset: Path) -> None:  # type: ignore[no-untyped-def]
    for page in pages("zh")[:2]:
        text = (devset / f"{page}.txt").read_text()
        result = service.run("summarize", text.encode(), "text/plain", {"sentences": "3"}).result
        assert result["language"] == "zh"
        assert result["sources"], page
        for source in result["sources"]:
            assert text[source["start"] : source["end"]] == source["text"]


def test_a_page_of_listings_is_summarised_from_its_prose(service) -> None:  # type: ignore[no-untyped-def]
    """Code, LaTeX source and a loop in displays between two prose sentences (a born-digital PDF):
    the summary is the two sentences, whatever blocks the layout put the listings in, and the result
    counts what it left out."""
    pdf = pdfgen.groff_ms_pdf(pdfgen.LISTINGS_AND_PROSE_SOURCE)
    result = service.run("summarize", pdf, "application/pdf", {"sentences": "5"}).result
    assert [s["text"] for s in result["sources"]] == pdfgen.PROSE_SENTENCES
    assert result["summary"] == " ".join(pdfgen.PROSE_SENTENCES)
    assert result["source"]["sentences"] == 2 and sum(result["source"]["left_out"].values()) >= 3
    assert "note" not in result


def test_a_page_without_prose_says_so(service) -> None:  # type: ignore[no-untyped-def]
    pdf = pdfgen.groff_ms_pdf(pdfgen.LISTINGS)
    result = service.run("summarize", pdf, "application/pdf").result
    assert result["summary"] == "" and result["sources"] == [] and result["source"]["left_out"]
    assert result["note"].startswith("no prose to summarise")


def test_json_text_body(service) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps({"text": ARTICLE}).encode()
    result = service.run("summarize", body, "application/json", {"sentences": "2"}).result
    assert all(ARTICLE[s["start"] : s["end"]] == s["text"] for s in result["sources"])


def _block_texts(block: dict[str, Any]) -> str:
    return " ".join([block.get("text", ""), *block.get("list_items", [])])


@pytest.mark.parametrize("category", ["en", "zh"])
def test_devset_pages_through_parse_and_its_cache(
    category: str, model_store: Path, devset: Path, redis_server: RedisServer
) -> None:
    """A page is parsed in-process; its sentences carry page and box; parse's own function, sharing
    the cache, then finds its entry (and the other way round)."""
    settings = Settings(tasks=["summarize"], model_store=model_store, redis_url=redis_server.url)
    page = (devset / f"{pages(category)[0]}.png").read_bytes()
    outcome = build_service(settings).run("summarize", page, "image/png", {"sentences": "4"})
    result = outcome.result
    assert result["language"] == category
    parse = build_service(settings.model_copy(update={"tasks": ["parse"]}))
    parsed = parse.run("parse", page, "image/png")
    assert parsed.cached  # summarize wrote parse's entry under parse's own key
    blocks = parsed.result["content_list"]
    assert result["sources"]
    for source in result["sources"]:
        block = blocks[source["block"]]
        assert source["text"] in _block_texts(block)
        assert source["page"] == block["page_idx"] + 1 and source["bbox"] == block["bbox"]
    assert (
        len({tuple(s["heading_path"]) for s in result["sources"]}) >= 2 or result["source"]["sections"] == 1
    )


def test_cli_on_markdown_and_a_page(model_store: Path, devset: Path, tmp_path: Path) -> None:
    article = tmp_path / "article.md"
    article.write_text(ARTICLE)
    page = devset / f"{pages('en')[0]}.png"

    def docfn_run(*args: str) -> str:
        done = run_docfn("run", "summarize", *args, env={"DOCFN_MODEL_STORE": str(model_store)})
        done.check_returncode()
        return done.stdout

    lines = docfn_run(str(article), str(page), "-o", "sentences=2").splitlines()
    text_body, page_body = (json.loads(line) for line in lines)
    assert text_body["result"]["source"]["input"] == "text"
    assert page_body["result"]["source"]["input"] == "document"
    assert all(s["page"] == 1 for s in page_body["result"]["sources"])
    shown = docfn_run(str(article), "--format", "md")
    assert "engine extractive-lexrank" in shown and "Sources:" in shown


@pytest.fixture(scope="module")
def http_server(model_store: Path) -> Iterator[DocfnServer]:
    env = {"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "summarize"}
    instance = DocfnServer(env).start()
    yield instance
    instance.stop()


def test_http_text_json_and_zh_page(http_server: DocfnServer, devset: Path) -> None:
    with http_server.client(timeout=600) as client:
        md = client.post("/summarize?sentences=2", content=ARTICLE, headers={"content-type": "text/markdown"})
        assert md.status_code == 200, md.text
        assert md.json()["result"]["engine"] == "extractive-lexrank"
        as_json = client.post("/v1/summarize", json={"text": ARTICLE}, params={"sentences": "2"})
        assert as_json.status_code == 200 and as_json.json()["result"]["sources"]
        page = (devset / f"{pages('zh')[0]}.png").read_bytes()
        answer = client.post("/v1/summarize", content=page, headers={"content-type": "image/png"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"]["language"] == "zh"
        assert all("bbox" in s for s in answer.json()["result"]["sources"])
        operation = client.get("/openapi.json").json()["paths"]["/v1/summarize"]["post"]
        assert {"text/markdown", "application/json", "image/png"} <= set(operation["requestBody"]["content"])
        too_long = client.post(
            "/v1/summarize", content=b"x" * 64, headers={"content-type": "application/octet-stream"}
        )
        assert too_long.status_code == 200  # UTF-8 without a declared type: read as plain text


def test_too_long_text_is_413(model_store: Path) -> None:
    small = build_service(Settings(tasks=["summarize"], model_store=model_store, summarize_max_chars=200))
    with pytest.raises(Exception) as refused:
        small.run("summarize", ARTICLE.encode(), "text/markdown")
    assert getattr(refused.value, "status", None) == 413
    assert "DOCFN_SUMMARIZE_MAX_CHARS" in str(refused.value)


def test_long_text_map_reduce_reports_progress(service) -> None:  # type: ignore[no-untyped-def]
    paragraphs = [
        f"## Part {n}\n\nTopic {n} begins here with finding number {n}. "
        f"Measurement {n} supports finding {n}. "
        f"Further work on topic {n} is planned for year {2000 + n}.\n"
        for n in range(250)
    ]
    text = "\n".join(paragraphs)
    steps: list[tuple[int, int]] = []
    result = service.run(
        "summarize",
        text.encode(),
        "text/markdown",
        {"sentences": "5"},
        on_page=lambda d, t: steps.append((d, t)),
    ).result
    assert result["parts"] > 1
    assert steps and steps[-1][0] == steps[-1][1] == result["parts"] + 1
    assert len(result["sources"]) == 5
    assert all(text[s["start"] : s["end"]] == s["text"] for s in result["sources"])


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server = ChatServer()
    yield server
    server.httpd.shutdown()


def _llm_service(chat: ChatServer, model_store: Path, **settings: Any):  # type: ignore[no-untyped-def]
    return build_service(
        Settings(
            tasks=["summarize"],
            model_store=model_store,
            summarize_url=chat.url,
            summarize_model="test-model",
            summarize_api_key="secret-key",
            summarize_retries=1,
            **settings,
        ),
        cache=MemoryCache(),
    )


def test_openai_compatible_endpoint(chat_server: ChatServer, model_store: Path) -> None:
    service = _llm_service(chat_server, model_store)
    result = service.run(
        "summarize", ARTICLE.encode(), "text/markdown", {"sentences": "2", "max_tokens": "50"}
    ).result
    assert result["engine"] == "llm:test-model" and result["fallback"] is None
    assert result["summary"] == chat_server.answer
    (request,) = chat_server.requests
    assert request["path"] == "/v1/chat/completions" and request["model"] == "test-model"
    assert request["auth"] == "Bearer secret-key" and request["max_tokens"] == 50
    assert "Storage makes solar power available" in request["messages"][-1]["content"]
    # The sources it rests on: the source's sentences sharing its words.
    assert result["sources"] and all(ARTICLE[s["start"] : s["end"]] == s["text"] for s in result["sources"])


def test_failing_endpoint_falls_back_to_extractive(chat_server: ChatServer, model_store: Path) -> None:
    chat_server.fail = 503
    service = _llm_service(chat_server, model_store)
    outcome = service.run("summarize", ARTICLE.encode(), "text/markdown", {"sentences": "2"})
    result = outcome.result
    assert result["engine"] == "extractive-lexrank"
    assert result["fallback"]["engine"] == "llm:test-model"
    assert "HTTP 503" in result["fallback"]["reason"] and "2 attempt(s)" in result["fallback"]["reason"]
    assert len(chat_server.requests) == 2  # one retry
    assert all(ARTICLE[s["start"] : s["end"]] == s["text"] for s in result["sources"])
    # A fallback is not cached: once the endpoint is back, it answers.
    chat_server.fail = None
    again = service.run("summarize", ARTICLE.encode(), "text/markdown", {"sentences": "2"})
    assert not again.cached and again.result["engine"] == "llm:test-model"


def test_near_deadline_falls_back_without_calling(chat_server: ChatServer, model_store: Path) -> None:
    import time

    service = _llm_service(chat_server, model_store)
    result = service.run(
        "summarize", ARTICLE.encode(), "text/markdown", {"sentences": "2"}, deadline=time.monotonic() + 0.5
    ).result
    assert result["engine"] == "extractive-lexrank" and "deadline" in result["fallback"]["reason"]
    assert chat_server.requests == []


def test_unreachable_endpoint_falls_back(model_store: Path) -> None:
    service = build_service(
        Settings(
            tasks=["summarize"],
            model_store=model_store,
            summarize_url="http://127.0.0.1:9/v1",
            summarize_retries=0,
        )
    )
    result = service.run("summarize", ARTICLE.encode(), "text/markdown", {"engine": "llm"}).result
    assert result["fallback"]["engine"] == "llm:default" and "ConnectError" in result["fallback"]["reason"]


def test_engine_without_its_configuration_is_refused(service) -> None:  # type: ignore[no-untyped-def]
    for engine, setting in (("llm", "DOCFN_SUMMARIZE_URL"), ("vlm", "DOCFN_VLM_MODEL_URI")):
        with pytest.raises(Exception, match=setting):
            service.run("summarize", ARTICLE.encode(), "text/markdown", {"engine": engine})


def test_vlm_engine_writes_with_the_packs_language_model(vlm_tiny_pack: Path, model_store: Path) -> None:
    pack_id = verify_pack(vlm_tiny_pack).pack_id
    service = build_service(
        Settings(tasks=["summarize"], model_store=model_store, vlm_model_uri=str(vlm_tiny_pack)),
        cache=MemoryCache(),
    )
    outcome = service.run("summarize", ARTICLE.encode(), "text/markdown", {"max_tokens": "12"})
    result = outcome.result
    # auto picks the configured VLM; its pack is part of the result's identity (and cache key).
    assert result["engine"] == f"vlm:{pack_id}" and result["fallback"] is None
    assert result["model"].endswith("+" + pack_id) and pack_id in outcome.cache_key
    assert result["summary"]
    extractive = service.run("summarize", ARTICLE.encode(), "text/markdown", {"engine": "extractive"})
    assert extractive.result["engine"] == "extractive-lexrank"
    assert pack_id not in extractive.result["model"]  # the VLM is in the identity only where used


def test_vlm_write_is_bounded_by_max_tokens_and_the_deadline(vlm_tiny_pack: Path) -> None:
    import time

    from docfn.tasks.summarize.writers import WriterFailed, vlm_write
    from docfn.tasks.vlm.engine import VlmEngine
    from docfn.tasks.vlm.model import VlmModel

    engine = VlmEngine(VlmModel.from_pack(vlm_tiny_pack, verify_pack(vlm_tiny_pack)), window_seconds=0.0)
    calls: list[int] = []

    class Counting:
        """The real batching engine, counting the tokens each generation returns."""

        def generate(self, *args: Any, **kwargs: Any) -> Any:
            generation = engine.generate(*args, **kwargs)
            calls.append(len(generation.token_ids))
            return generation

    text = vlm_write(Counting(), "Summarise: solar panels are cheap.", 5, None)  # type: ignore[arg-type]
    assert calls and calls[0] <= 5 and isinstance(text, str)
    with pytest.raises(WriterFailed, match="deadline"):
        vlm_write(engine, "Summarise: solar panels are cheap.", 5, time.monotonic() - 1)
    engine.close()


def test_endpoint_key_from_secrets_manager(
    chat_server: ChatServer, model_store: Path, s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the cloud the key comes from Secrets Manager (moto's server here, over HTTP)."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", s3_server.endpoint_url)
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secrets.create_secret(Name="docfn-summarize", SecretString=json.dumps({"api_key": "from-sm"}))[
        "ARN"
    ]
    settings = Settings(
        tasks=["summarize"],
        model_store=model_store,
        summarize_url=chat_server.url,
        summarize_api_key_secret_arn=arn,
    )
    result = build_service(settings).run("summarize", ARTICLE.encode(), "text/markdown").result
    assert result["engine"] == "llm:default"
    assert chat_server.requests[0]["auth"] == "Bearer from-sm"


def test_long_text_map_reduce_through_the_endpoint(chat_server: ChatServer, model_store: Path) -> None:
    """Parts of at most DOCFN_SUMMARIZE_PART_TOKENS tokens each summarised, then their summaries."""
    from docfn.core.sentences import token_count

    text = "\n".join(
        f"## Part {n}\n\nTopic {n} begins here with finding number {n}. Measurement {n} supports it.\n"
        for n in range(40)
    )
    service = _llm_service(chat_server, model_store, summarize_part_tokens=100)
    steps: list[tuple[int, int]] = []
    result = service.run(
        "summarize", text.encode(), "text/markdown", {}, on_page=lambda d, t: steps.append((d, t))
    ).result
    assert result["engine"] == "llm:test-model" and result["summary"] == chat_server.answer
    assert result["parts"] > 1
    prompts = [r["messages"][-1]["content"] for r in chat_server.requests]
    mapped = prompts[: result["parts"]]
    assert all(token_count(p.split("\n\n", 1)[1]) <= 100 for p in mapped)  # each part within the bound
    assert len(prompts) > result["parts"]  # then the parts' summaries, reduced
    assert chat_server.answer in prompts[-1]
    assert steps[-1][0] == steps[-1][1]


def test_cli_progress_line_on_a_terminal() -> None:
    import io

    from docfn.adapters.cli.run import progress_printer

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    show = progress_printer(terminal, "step")
    assert show is not None
    for done in (1, 2, 3):
        show(done, 3)
    assert terminal.getvalue() == "\rdocfn: step 1/3\rdocfn: step 2/3\rdocfn: step 3/3\n"
    assert progress_printer(io.StringIO(), "step") is None  # not a terminal: silent


def test_the_map_step_writes_its_parts_together() -> None:
    """With a writer of several prompts (the VLM's), each round of the map step is one call holding
    all its parts, so the engine decodes them in one batch; progress still counts every part."""
    from docfn.tasks.summarize import abstractive
    from docfn.tasks.summarize.source import Sentence

    sentences = [
        Sentence(f"Finding number {n} holds for topic {n} in year {2000 + n}.", 0) for n in range(60)
    ]
    rounds: list[int] = []

    def write_many(prompts: list[str], max_tokens: int, deadline: float | None) -> list[str]:
        rounds.append(len(prompts))
        return [f"Note {n}." for n in range(len(prompts))]

    def write(prompt: str, max_tokens: int, deadline: float | None) -> str:
        return "The summary."

    steps: list[tuple[int, int]] = []
    summary, parts = abstractive.summarize(
        sentences, write, language="en", count=2, chars=None, max_tokens=16, part_tokens=60,
        deadline=None, progress=lambda d, t: steps.append((d, t)), write_many=write_many,
    )  # fmt: skip
    assert parts > 1 and rounds == [parts]
    assert summary == "The summary." and steps[-1][0] == steps[-1][1] == parts + 1


def test_vlm_write_many_decodes_the_prompts_together(vlm_tiny_pack: Path) -> None:
    from docfn.core import metrics
    from docfn.tasks.summarize.writers import vlm_write, vlm_write_many
    from docfn.tasks.vlm.engine import VlmEngine
    from docfn.tasks.vlm.model import VlmModel

    engine = VlmEngine(VlmModel.from_pack(vlm_tiny_pack, verify_pack(vlm_tiny_pack)), window_seconds=0.0)
    prompts = [f"Summarise: part {n} is about solar panels." for n in range(3)]
    before = metrics.VLM_BATCH_SIZE.collect()[0].samples
    together = vlm_write_many(engine, prompts, 6, None)
    after = metrics.VLM_BATCH_SIZE.collect()[0].samples
    count = {s.name: s.value for s in after}["docfn_vlm_batch_size_count"]
    assert count - {s.name: s.value for s in before}["docfn_vlm_batch_size_count"] == 1  # one prefill
    assert together == [vlm_write(engine, prompt, 6, None) for prompt in prompts]
    engine.close()
