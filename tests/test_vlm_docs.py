"""Every command docs/vlm-blocks.md shows, run as a reader would: the tiny random pack's tour on
crops of a devset page, and the real-weights export and publish (with a tiny checkpoint standing in
for MinerU2.5's weights, and the moto server for the bucket)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from pathlib import Path

from PIL import Image

from docfn_testkit.paths import DEVSET, ROOT
from docfn_testkit.servers import AWS_TEST_ENV, S3Server

DOC = ROOT / "docs" / "vlm-blocks.md"
FENCE = re.compile(r"```sh\n(.*?)```", re.S)


def blocks() -> list[str]:
    return FENCE.findall(DOC.read_text())


def run(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True
    )


def reader_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}/usr/bin:/bin",
        "HOME": str(home),
        "DOCFN_MODEL_STORE": str(home / ".cache" / "docfn" / "models"),
    }


def save_crop(page: str, box: tuple[int, int, int, int] | None, target: Path) -> None:
    image = Image.open(DEVSET / page).convert("RGB")
    out = io.BytesIO()
    (image.crop(box) if box else image).save(out, format="PNG")
    target.write_bytes(out.getvalue())


def test_the_tiny_pack_tour(tmp_path: Path, model_store: Path) -> None:
    script = blocks()[1]
    assert "--random-tiny /tmp/vlm-tiny" in script
    script = script.replace("/tmp/vlm-tiny", str(tmp_path / "vlm-tiny"))
    save_crop("001.png", (590, 1222, 745, 1285), tmp_path / "formula.png")
    save_crop("010.png", (385, 380, 985, 470), tmp_path / "chart.png")
    save_crop("001.png", (296, 990, 964, 1072), tmp_path / "table.png")
    save_crop("001.png", None, tmp_path / "page.png")
    env = {**reader_env(tmp_path), "DOCFN_MODEL_STORE": str(model_store)}
    done = run(script, tmp_path, env)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    # Every run printed its answer: the export's figures, two JSON bodies, Markdown pages.
    assert '"fp32_decoder"' in out and out.count('"task": "chart"') == 1 and out.count('"task": "table"') == 1
    chart = json.loads(next(line for line in out.splitlines() if line.startswith('{"task": "chart"')))
    assert chart["result"]["model"].endswith("@vlm-tiny") and "content" in chart["result"]


def test_the_real_weights_export_and_publish(tmp_path: Path, s3_server: S3Server) -> None:
    from docfn.tooling.vlm_checkpoint import write_tiny_checkpoint

    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    write_tiny_checkpoint(checkpoint)  # stands in for MinerU2.5's weights (same architecture)
    env = {
        **reader_env(tmp_path),
        **AWS_TEST_ENV,
        "MINERU_CHECKPOINT": str(checkpoint),
        "BUCKET": "docfn-test",
        "DOCFN_S3_ENDPOINT_URL": s3_server.endpoint_url,
    }
    done = run(blocks()[0], tmp_path, env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "published s3://docfn-test/models/vlm-mineru25-int8/1" in done.stdout
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket="docfn-test")["Contents"]]
    assert "models/vlm-mineru25-int8/1/manifest.json" in keys
    # The publish gate: a VLM pack whose fp32 graphs missed transformers' tokens is refused.
    import pytest

    from docfn.packs.manifest import Manifest
    from docfn.tooling.publish import PublishRefused, check_accuracy

    manifest = Manifest.load(tmp_path / "home" / ".cache" / "docfn" / "models" / "vlm-mineru25-int8" / "1")
    check_accuracy(manifest)
    manifest.accuracy["fp32_decoder"]["exact_cases"] -= 1
    with pytest.raises(PublishRefused, match="the export is wrong"):
        check_accuracy(manifest)
