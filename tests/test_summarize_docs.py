"""Every command docs/summarize.md shows, run as a reader would (the OpenAI-compatible server it
assumes on port 8000 is the test's own local server)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from docfn_testkit.paths import ROOT, SAMPLE_PAGE
from docfn_testkit.servers import free_port
from docfn_testkit.summarize import ARTICLE, ChatServer
from docfn_testkit.walkthrough import reader_env, run_shown

DOC = ROOT / "docs" / "summarize.md"
FENCE = re.compile(r"```sh\n(.*?)```", re.S)


def test_every_command_of_the_doc_runs(model_store: Path, tmp_path: Path) -> None:
    commands = [
        line.strip()
        for block in FENCE.findall(DOC.read_text())
        for line in block.splitlines()
        if line.strip()
    ]
    (tmp_path / "notes.md").write_text(ARTICLE)
    shutil.copy(SAMPLE_PAGE, tmp_path / "page.png")
    chat = ChatServer()
    replace = {"8080": str(free_port()), "http://127.0.0.1:8000/v1": chat.url}
    try:
        outputs = run_shown(commands, tmp_path, reader_env(model_store), replace)
    finally:
        chat.httpd.shutdown()
    ran = list(outputs.values())
    assert len(ran) == len(commands) - 1  # every command but the server ran, and succeeded
    notes = json.loads(ran[0])["result"]
    assert len(notes["sources"]) == 3 and notes["engine"] == "extractive-lexrank"
    assert "Sources:" in ran[1] and "(page 1)" in ran[1]
    for answer in ran[2:5]:
        assert json.loads(answer)["result"]["summary"]
    assert json.loads(ran[4])["result"]["sources"][0]["page"] == 1
    assert json.loads(ran[5])["result"]["engine"] == "llm:qwen2.5-7b-instruct"
    assert chat.requests and chat.requests[0]["model"] == "qwen2.5-7b-instruct"
    chunks = [json.loads(line) for line in ran[6].splitlines()]
    assert chunks and all(c["tokens"] <= 256 for c in chunks)
    assert json.loads(ran[7])["result"]["chunks"] == chunks
