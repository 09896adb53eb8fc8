"""``docfn run`` with several inputs: JSON Lines, a header per file in text output, and ``--out``
files that never overwrite each other (the same file name in two folders)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from docfn.adapters.cli.render import output_stems
from docfn_testkit.cli import run_docfn
from docfn_testkit.paths import SAMPLE_PAGE


@pytest.fixture
def two_folders(tmp_path: Path) -> list[Path]:
    """``a/page.png`` (the sample page) and ``b/page.png`` (the same page, upside down)."""
    from PIL import Image

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = tmp_path / "a" / "page.png"
    shutil.copy(SAMPLE_PAGE, first)
    second = tmp_path / "b" / "page.png"
    Image.open(SAMPLE_PAGE).crop((0, 0, 1200, 600)).save(second)
    return [first, second]


def _run(args: list[str], model_store: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_docfn("run", "ocr", *args, env={"DOCFN_MODEL_STORE": str(model_store)}, cwd=cwd)


def test_json_is_one_line_per_input(model_store: Path, two_folders: list[Path], tmp_path: Path) -> None:
    done = _run([str(p) for p in two_folders], model_store, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    objects = [json.loads(line) for line in lines]
    assert all(o["task"] == "ocr" for o in objects)
    assert objects[0]["input_sha256"] != objects[1]["input_sha256"]


def test_text_output_has_a_header_per_file(
    model_store: Path, two_folders: list[Path], tmp_path: Path
) -> None:
    done = _run(["a/page.png", "b/page.png", "--format", "text"], model_store, tmp_path)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.split("==> b/page.png <==\n")
    assert first.startswith("==> a/page.png <==\n") and "RaggedRight" in first
    assert second.strip() and "RaggedRight" not in second  # the cropped page is the top only
    single = _run(["a/page.png", "--format", "text"], model_store, tmp_path)
    assert "==>" not in single.stdout  # one input: the text alone, as before


def test_out_keeps_one_output_per_input(model_store: Path, two_folders: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _run([*map(str, two_folders), "--format", "text", "--out", str(out)], model_store, tmp_path)
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a-page.txt", "b-page.txt"]
    assert "RaggedRight" in (out / "a-page.txt").read_text()
    assert "RaggedRight" not in (out / "b-page.txt").read_text()


def test_output_stems() -> None:
    assert output_stems([Path("x/doc.pdf"), Path("y/page.png")]) == ["doc", "page"]
    assert output_stems([Path("x/a/page.png"), Path("y/a/page.png"), Path("z/other.png")]) == [
        "x-a-page",
        "y-a-page",
        "other",
    ]
    assert output_stems([Path("x/page.png"), Path("x/page.pdf")]) == ["page-png", "page-pdf"]
    assert output_stems([Path("page.png"), Path("page.png")]) == ["page", "page-2"]
