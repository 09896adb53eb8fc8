"""Things a container or a terminal sees: CPU quota -> thread counts, progress on a TTY."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from PIL import Image

from docfn.core.cpus import available_cpus
from docfn_testkit.docgen import pdf_from_images
from docfn_testkit.paths import SAMPLE_PAGE


def test_thread_count_follows_the_cgroup_quota(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("100000 100000\n")  # 1000m
    assert available_cpus(v2) == 1
    (v2 / "cpu.max").write_text("150000 100000\n")  # 1500m rounds up
    assert available_cpus(v2) == min(2, affinity)
    (v2 / "cpu.max").write_text("max 100000\n")  # no limit: the affinity mask decides
    assert available_cpus(v2) == affinity
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    (v1 / "cpu.cfs_quota_us").write_text("50000\n")  # 500m
    assert available_cpus(v1.parent) == 1
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")  # no limit
    assert available_cpus(v1.parent) == affinity
    assert available_cpus(tmp_path / "missing") == affinity


def test_multi_page_progress_on_a_terminal(model_store: Path, tmp_path: Path) -> None:
    page = Image.open(SAMPLE_PAGE).convert("RGB").resize((620, 877))
    pdf = tmp_path / "two.pdf"
    pdf.write_bytes(pdf_from_images([page, page]))
    env = {**os.environ, "DOCFN_MODEL_STORE": str(model_store)}
    command = [
        sys.executable,
        "-m",
        "docfn",
        "run",
        "ocr",
        str(pdf),
        "--format",
        "text",
        "--out",
        str(tmp_path),
    ]
    # stderr on a pseudo-terminal: the CLI shows progress only to people, not to pipes.
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=120) == 0
    shown = b"".join(chunks).decode(errors="replace")
    assert "page 1/2" in shown and "page 2/2" in shown
    piped = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=True)
    assert "page 1/2" not in piped.stderr
