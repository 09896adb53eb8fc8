"""What a cold start imports: every function builds its service and serves its first page on the cold
path (issue 26: nothing the first request does not need is imported before it). Measured costs on
this machine: httpx with its command line (click, rich, pygments) ~0.1 s, numpy.ma ~20 ms."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from docfn_testkit.paths import SAMPLE_PAGE

# Imported only by what needs them: summarize's LLM endpoint and URL inputs (httpx), never a first page.
NOT_ON_THE_COLD_PATH = ("httpx", "click", "rich", "pygments", "numpy.ma")


@pytest.mark.parametrize("task", ["ocr", "parse"])
def test_a_first_page_imports_only_what_it_needs(model_store: Path, task: str) -> None:
    code = (
        "import sys, json; from docfn.adapters.wiring import build_service;"
        "from docfn.core.settings import Settings;"
        f"s = build_service(Settings(tasks=[{task!r}], model_store={str(model_store)!r}));"
        "s.load_all(eager=True);"  # the warm-up a function runs during init, too
        f"s.run({task!r}, open({str(SAMPLE_PAGE)!r}, 'rb').read(), 'image/png');"
        f"print(json.dumps([m for m in {NOT_ON_THE_COLD_PATH!r} if m in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
