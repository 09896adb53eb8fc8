"""``docfn ARGS`` run in the test's own process, through the command line's ``main()``.

For tests of what a command does (its output, its files, its refusals). A ``docfn`` process costs
about a second of CPU before it does anything (Python, pydantic, FastAPI and ONNX Runtime imported
anew), which many such tests paid for nothing. Tests about the process itself (the console script,
signals, a terminal, what start-up logs) still start ``python -m docfn``.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path


@contextlib.contextmanager
def _environment(set_: Mapping[str, str], unset: Sequence[str], cwd: Path | None) -> Iterator[None]:
    saved = dict(os.environ)
    here = Path.cwd()
    try:
        for name in unset:
            os.environ.pop(name, None)
        os.environ.update(set_)
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved)


def run_docfn(
    *args: str | Path,
    env: Mapping[str, str] | None = None,
    unset: Sequence[str] = (),
    cwd: Path | None = None,
    clean: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``docfn ARGS`` with ``env`` added to this process's environment (``unset`` names removed, and
    with ``clean`` every ``DOCFN_*`` variable, as a minimal environment would have none) and ``cwd``
    as the working directory, all restored afterwards: its exit status and what it wrote to stdout
    and stderr, as ``subprocess.run(..., capture_output=True, text=True)`` returns them. Standard
    streams are not terminals here, as under ``capture_output``."""
    from docfn.adapters.cli.main import main

    if clean:
        unset = [*unset, *(name for name in os.environ if name.upper().startswith("DOCFN_"))]

    argv = [str(arg) for arg in args]
    stdout, stderr = io.StringIO(), io.StringIO()
    from docfn.core.malloc_policy import GLIBC_DEFAULT_TUNABLE

    # The entry point sets glibc's malloc for its process (docfn.core.malloc_policy): not this one's
    # to change. docfn leaves the arenas alone when MALLOC_ARENA_MAX is set, and the thresholds when
    # a glibc.malloc tunable is.
    quiet = {
        "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "8"),
        "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES", GLIBC_DEFAULT_TUNABLE),
    }
    with (
        _environment({**quiet, **(env or {})}, unset, cwd),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors and --help
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess(["docfn", *argv], code, stdout.getvalue(), stderr.getvalue())
