"""Running the commands a document shows (README.md, docs/*.md) as a reader would: in this
checkout's venv, line by line, a ``docfn serve … &`` line left serving until the end. (A whole
section as one shell session: servers.shell_session.)"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import httpx

from .paths import ROOT
from .servers import wait_for_port


def reader_env(model_store: Path) -> dict[str, str]:
    """This process's environment with the checkout's venv first on PATH (as after ``scripts/setup``)
    and ``model_store`` as the pack store."""
    return {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "DOCFN_MODEL_STORE": str(model_store),
    }


def run_shown(commands: list[str], cwd: Path, env: dict[str, str], replace: dict[str, str]) -> dict[str, str]:
    """A doc's shell lines run as a reader would, in ``cwd``: a line ending in ``&`` starts
    ``docfn serve`` (stopped at the end), the others must succeed. Returns each line's stdout, keyed
    by the line (after ``replace``: the doc's ports and URLs with the test's own)."""
    server: subprocess.Popen | None = None
    outputs: dict[str, str] = {}
    try:
        for command in commands:
            for old, new in replace.items():
                command = command.replace(old, new)
            if command.endswith("&"):
                assert command.startswith("docfn serve")
                server = subprocess.Popen(shlex.split(command[:-1]), cwd=cwd, env=env)
                port = int(re.search(r"--port (\d+)", command).group(1))  # type: ignore[union-attr]
                wait_for_port(port, timeout=60, process=server)
                assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30).status_code == 200
                continue
            done = subprocess.run(
                ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, f"{command}\n{done.stderr}"
            outputs[command] = done.stdout
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
    return outputs
