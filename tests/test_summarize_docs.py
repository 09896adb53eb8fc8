"""Every command docs/summarize.md shows, run as a reader would (the OpenAI-compatible server it
assumes on port 8000 is the test's own local server)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import httpx

from .conftest import ROOT, SAMPLE_PAGE, free_port, wait_for_port
from .test_readme import _env
from .test_summarize import ARTICLE, _ChatServer

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
    chat = _ChatServer()
    env = _env(model_store)
    port = str(free_port())
    server: subprocess.Popen | None = None
    outputs: dict[str, str] = {}
    try:
        for command in commands:
            command = command.replace("8080", port).replace("http://127.0.0.1:8000/v1", chat.url)
            if command.endswith("&"):
                assert command.startswith("docfn serve")
                server = subprocess.Popen(shlex.split(command[:-1]), cwd=tmp_path, env=env)
                wait_for_port(int(port), timeout=60, process=server)
                assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30).status_code == 200
                continue
            done = subprocess.run(
                ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, f"{command}\n{done.stderr}"
            outputs[command] = done.stdout
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
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
