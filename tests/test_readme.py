"""Every command the top-level README shows, run as a reader would run it.

The Deploy section's commands (Terraform, Knative, image builds) are run or checked by
tests/infra/test_readme_commands.py and tests/image/.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version
from PIL import Image

from docfn_testkit.checkout import copy_checkout
from docfn_testkit.docgen import pdf_from_images
from docfn_testkit.lock import pins as lock_pins
from docfn_testkit.paths import ROOT, SAMPLE_PAGE
from docfn_testkit.servers import free_port, shell_session
from docfn_testkit.walkthrough import reader_env, run_shown

README = ROOT / "README.md"
FENCE = re.compile(r"```sh\n(.*?)```", re.S)


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _commands(title: str) -> list[str]:
    """The shell lines of a section's code blocks, comments dropped."""
    lines = []
    for block in FENCE.findall(_section(title)):
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command:
                lines.append(command)
    return lines


def test_try_it_installs_and_reads_the_sample_page(model_store: Path, tmp_path: Path) -> None:
    """The install command, run as a new user runs it: in a clone with nothing beside it and no venv
    yet (here: a copy of this checkout). Never in this checkout: `scripts/setup` syncs a venv to the
    laptop lock (requirements/local.txt) exactly, which would take the suite's own tools out of it."""
    install, suite = _commands("Try it (fresh Debian/Ubuntu, Python 3.11)")
    clone = copy_checkout(tmp_path / "docfn")
    assert (
        install
        == "scripts/setup && .venv/bin/docfn run ocr functions/docfn/samples/sample-page.png --format text"
    )
    done = subprocess.run(
        ["bash", "-c", install],
        cwd=clone,
        env=reader_env(model_store),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "OUR SOLUTION" in done.stdout  # the sample page's heading, read by OCR
    # The same install builds the layout pack on a first parse: its graph rewrite's onnx is there.
    rewrite = [".venv/bin/python", "-c", "from docfn.tooling.graph_rewrites import _onnx; _onnx()"]
    assert subprocess.run(rewrite, cwd=clone, capture_output=True, text=True).returncode == 0
    # And the install is the laptop lock exactly: nothing more, nothing less, no other version.
    listing = (
        "import json, importlib.metadata as m;"
        " print(json.dumps([[d.metadata['Name'], d.version] for d in m.distributions()]))"
    )
    listed = subprocess.run(
        [".venv/bin/python", "-c", listing], cwd=clone, capture_output=True, text=True, check=True
    )
    installed = {canonicalize_name(name): Version(version) for name, version in json.loads(listed.stdout)}
    installed.pop("docfn")
    assert installed == lock_pins(clone / "requirements" / "local.txt")
    # The suite command is what CI runs (.ci/run), so it is exercised by every CI run itself.
    assert suite == "scripts/test"
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


@pytest.fixture
def reader_folder(tmp_path: Path, devset: Path) -> Path:
    """What the Use section expects in the reader's folder: page.png, a 7-page doc.pdf, table.png."""
    shutil.copy(SAMPLE_PAGE, tmp_path / "page.png")
    page = Image.open(SAMPLE_PAGE).convert("RGB")
    (tmp_path / "doc.pdf").write_bytes(pdf_from_images([page] * 7))
    # A table image: 003's booktabs table, cropped from the page.
    Image.open(devset / "003.png").convert("RGB").crop((350, 1030, 1060, 1245)).save(tmp_path / "table.png")
    return tmp_path


def test_use_section_commands(model_store: Path, reader_folder: Path) -> None:
    port = str(free_port())  # the README's 8080 may be taken on a shared machine
    ran = run_shown(_commands("Use"), reader_folder, reader_env(model_store), {"8080": port})
    outputs = {command.split(" --")[0]: out for command, out in ran.items()}
    assert "OUR SOLUTION" in outputs["docfn run ocr page.png"]
    assert (reader_folder / "out" / "doc.md").read_text().count("<!-- page") == 4  # pages 1-3 and 7
    parsed = reader_folder / "parsed"
    assert "Knuth describes" in (parsed / "doc.md").read_text()
    assert json.loads((parsed / "doc.content_list.json").read_text())
    assert "text" in outputs["docfn run layout page.png"] or "title" in outputs["docfn run layout page.png"]
    assert "| Command | Uses |" in outputs["docfn run table table.png"]  # a Markdown table
    assert "Sources:" in outputs["docfn run summarize page.png"]
    assert all(
        json.loads(line)["heading_path"] is not None
        for line in outputs["docfn run parse page.png"].splitlines()
    )
    assert any(row["pack"] == "ocr-ppocrv6-tiny@2" for row in json.loads(outputs["docfn models list"]))
    answer = json.loads(outputs[next(k for k in outputs if k.startswith("curl"))])
    assert "OUR SOLUTION" in answer["result"]["text"]
    lines = (reader_folder / "pages.jsonl").read_text().splitlines()
    assert [json.loads(line)["task"] for line in lines] == ["ocr", "ocr"]
    assert outputs["docfn run"] == outputs["docfn run ocr page.png"]  # --url: remote, the same output


def test_uploads_on_a_laptop_section_runs(model_store: Path, reader_folder: Path) -> None:
    """The section's commands as one shell session: a local S3 server, ``docfn serve`` watching its
    uploads, a presigned upload, the job polled until it succeeds, and its result read back."""
    (block,) = FENCE.findall(_section("Uploads on a laptop"))
    script = block.replace("9000", str(free_port())).replace("8080", str(free_port()))
    status, out, err = shell_session(script, reader_folder, reader_env(model_store), timeout=240)
    assert status == 0, err[-3000:]
    assert "OUR SOLUTION" in out  # the uploaded page, read by the job the watcher started
