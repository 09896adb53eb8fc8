"""A fresh clone is the whole project: the suite reads only what the repository carries (tests/data,
tests/data/SOURCES.md), never ``../shared`` beside it.

The checkout's files (tracked, plus changes and new files not yet committed, as a clone of this
work would have them) are copied into a scratch directory with nothing beside it. There, with this
venv's Python but the copy's own code first on the path, the whole suite must collect exactly the
tests it collects here, without an error, and tests that read the devset, the Lambda events and the
Knative CRD schema must pass.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from docfn_testkit.checkout import copy_checkout
from docfn_testkit.paths import ROOT

# Quick tests that read tests/data: a devset page (imaging parity), the S3 event delivered through
# SQS (the Knative EventTransform), and Knative Serving's Service CRD (strict validation).
READERS = (
    "tests/test_imaging.py::test_parity_colour",
    "tests/knative/test_manifests.py::test_upload_events_reach_the_function_of_their_prefix[dev]",
    "tests/knative/test_manifests.py::test_knative_services_validate_against_serving_crd[dev]",
)
# In the copy: its own packages are the ones imported, and the test data is its own.
PROBE = r"""
import json, sys
from pathlib import Path
import docfn, docfn_testkit
from docfn_testkit import events, paths

root = Path(sys.argv[1])
for module in (docfn, docfn_testkit):
    assert root in Path(module.__file__).resolve().parents, module.__file__
assert paths.ROOT == root and paths.DATA == root / "tests" / "data", paths.ROOT
assert len(paths.devset_manifest()) == len(list(paths.DEVSET.glob("*.png"))) == 10
assert (paths.SCHEMAS / "knative-serving-service-crd.yaml").is_file()
built = [
    events.function_url_event("GET", "/healthz"),
    events.s3_event("uploads/ocr/job/page.png", 1),
    events.sqs_event([("m-1", events.sqs_notification("uploads/ocr/job/page.png", 1))]),
    events.eventbridge_event("uploads/ocr/job/page.png", 1),
]
print(json.dumps([sorted(event) for event in built]))
"""
# A path to the material beside the repository, as the tests and scripts once read it.
SHARED_PATH = re.compile(r"""\.\./shared|["']shared["']|\bSHARED\b|DOCFN_SHARED""")


def environment(root: Path) -> dict[str, str]:
    """This process's environment, with ``root``'s packages first on the path (the editable install
    points at this checkout) and nothing that could point elsewhere."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS", "DOCFN_SHARED")}
    return {**env, "PYTHONPATH": str(root / "functions"), "PYTHONDONTWRITEBYTECODE": "1"}


def pytest_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]


def collected(output: str) -> list[str]:
    return sorted(line for line in output.splitlines() if "::" in line)


def test_sources_name_no_path_outside_the_repository() -> None:
    """No test, fixture or testkit module builds a path to ``../shared`` (this file excepted)."""
    sources = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "functions" / "docfn_testkit").rglob("*.py")]
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SHARED_PATH.search(line)
    ]
    assert not found, "\n".join(found)


def test_a_copy_with_nothing_beside_it_collects_and_reads_its_own_data(tmp_path: Path) -> None:
    clone = copy_checkout(tmp_path / "clone")
    assert not (clone.parent / "shared").exists()
    env = environment(clone)
    # Both collections at once (two processes): the copy's, and this checkout's to compare with.
    theirs = subprocess.Popen(
        pytest_command("--collect-only", "-q"),
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    ours = subprocess.Popen(
        pytest_command("--collect-only", "-q"),
        cwd=ROOT,
        env={k: v for k, v in env.items() if k != "PYTHONPATH"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(clone)],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    their_out, their_err = (stream.decode() for stream in theirs.communicate(timeout=180))
    our_out, _ = (stream.decode() for stream in ours.communicate(timeout=180))
    assert theirs.returncode == 0, f"{their_out[-3000:]}\n{their_err[-3000:]}"
    assert ours.returncode == 0, our_out[-3000:]
    assert collected(their_out) == collected(our_out) != []

    ran = subprocess.run(
        pytest_command("-q", "-rs", *READERS), cwd=clone, env=env, capture_output=True, text=True, timeout=180
    )
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-2000:]
    assert re.search(rf"\b{len(READERS)} passed\b", ran.stdout) and "skipped" not in ran.stdout, ran.stdout
