"""Start-up warns about DOCFN_* variables that are no setting (Settings ignores them silently).

Checked for real on each kind of process start: `docfn serve` (the Knative container's command),
`docfn run`, and the Lambda handler's runtime; the warning names the variable and the closest
setting. The variables docfn's own scripts and tests read outside Settings are listed in
`NOT_SETTINGS`, and that list is checked against what the repository really reads.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from docfn.core.settings import NOT_SETTINGS, setting_variables, unknown_variables
from docfn_testkit.paths import ROOT
from docfn_testkit.servers import DocfnServer

MISSPELT = "DOCFN_MAX_CONCURENCY"
MEANT = "DOCFN_MAX_CONCURRENCY"
# How the repository reads an environment variable: Python's os.environ / getenv, shell's ${X} / $X.
READS = (
    re.compile(r"""environ(?:\.get\(|\[)\s*["'](DOCFN_[A-Z0-9_]+)["']"""),
    re.compile(r"""getenv\(\s*["'](DOCFN_[A-Z0-9_]+)["']"""),
    re.compile(r"\$\{?(DOCFN_[A-Z0-9_]+)"),
)


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any DOCFN_* variable, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.upper().startswith("DOCFN_")}, **extra}


def _warnings(stderr: str) -> list[str]:
    """The messages of the unknown-setting warnings in a log (JSON lines, or plain text before the
    JSON log is configured)."""
    found = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = {"message": line, "level": "WARNING", "logger": "docfn.settings"}
        if isinstance(record, dict) and record.get("logger") == "docfn.settings":
            assert record["level"] == "WARNING"
            found.append(str(record["message"]))
    return [m for m in found if m.startswith("unknown setting ")]


def _names_the_misspelling(messages: list[str]) -> None:
    """One warning (a process warns once per variable) names the variable and the setting meant."""
    about = [m for m in messages if MISSPELT in m]
    assert len(about) == 1, messages
    assert f"did you mean {MEANT}?" in about[0]


def test_unknown_variables_name_the_closest_setting() -> None:
    environ = {
        MISSPELT: "2",
        "DOCFN_TASKS": "ocr",  # a setting
        "docfn_log_level": "INFO",  # a setting too: names are matched case-insensitively
        "DOCFN_TEST_WHEEL_CACHE": "/x",  # read by the tests, not a setting
        "DOCFN_QWERTYUIOP": "1",  # nothing close
        "PATH": "/usr/bin",
    }
    assert unknown_variables(environ) == {MISSPELT: MEANT, "DOCFN_QWERTYUIOP": None}


def test_the_variables_read_outside_settings_are_exactly_the_listed_ones() -> None:
    """Every DOCFN_* variable the repository reads is a setting or in NOT_SETTINGS, and every name
    in NOT_SETTINGS is still read somewhere (and is no setting)."""
    files = [
        *(ROOT / "functions").rglob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
        *(p for p in (ROOT / "scripts").iterdir() if p.is_file()),
        ROOT / "functions" / "Dockerfile",
    ]
    read: dict[str, set[str]] = {}
    for path in files:
        text = path.read_text(errors="replace")
        for pattern in READS:
            for name in pattern.findall(text):
                read.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    settings = setting_variables()
    outside = {name: where for name, where in read.items() if name not in settings}
    assert set(outside) == NOT_SETTINGS, {
        "read but neither a setting nor listed": {n: w for n, w in outside.items() if n not in NOT_SETTINGS},
        "listed but read nowhere": sorted(NOT_SETTINGS - set(outside)),
    }


def test_docfn_serve_warns_about_a_misspelt_variable(tmp_path: Path) -> None:
    server = DocfnServer({MISSPELT: "2", "DOCFN_TASKS": "summarize", "DOCFN_MODEL_STORE": str(tmp_path)})
    server.start()
    try:
        with server.client() as client:
            assert client.get("/healthz").status_code == 200  # a warning, not a refusal
    finally:
        code, stderr = server.stop()
    assert code == 0
    _names_the_misspelling(_warnings(stderr))


def test_docfn_run_warns_about_a_misspelt_variable(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("docfn reads documents. It runs on Lambda and on Knative. It costs nothing idle.\n")
    done = subprocess.run(
        [sys.executable, "-m", "docfn", "run", "summarize", str(notes), "--format", "text"],
        env=_clean_env(**{MISSPELT: "2", "DOCFN_MODEL_STORE": str(tmp_path / "models")}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "docfn reads documents" in done.stdout
    _names_the_misspelling(_warnings(done.stderr))


def test_lambda_runtime_warns_about_a_misspelt_variable(tmp_path: Path) -> None:
    """The handler's runtime (built on the first invocation, or during init with DOCFN_EAGER_LOAD)."""
    code = "from docfn.adapters.aws_lambda.handler import runtime; runtime()"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_clean_env(
            **{
                MISSPELT: "2",
                "DOCFN_TASKS": "summarize",
                "DOCFN_MODEL_STORE": str(tmp_path),
                "AWS_LAMBDA_FUNCTION_NAME": "docfn-summarize",
            }
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    _names_the_misspelling(_warnings(done.stderr))


def test_no_warning_without_unknown_variables(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("A short text. It has two sentences.\n")
    done = subprocess.run(
        [sys.executable, "-m", "docfn", "run", "summarize", str(notes), "--format", "text"],
        env=_clean_env(DOCFN_MODEL_STORE=str(tmp_path / "models"), DOCFN_TEST_WHEEL_CACHE=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert _warnings(done.stderr) == []
