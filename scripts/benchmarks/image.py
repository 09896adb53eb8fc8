"""The function images as shipped: cold start by phase inside the container, and image sizes.

Cold start (default): for each task (ocr, parse), N interleaved runs of a fresh container of the
built image (scripts/build_image) behind the real AWS Lambda Runtime Interface Emulator, read-only
root, empty /tmp, the model pack fetched from a moto S3 server on the host's loopback:

    podman run -> container started -> runtime init -> first result (one devset page)

Phases: container_start (podman run until the container's process started, podman's StartedAt),
runtime_init (RIE's INIT REPORT: Python + awslambdaric + importing the image's CMD handler, of
which handler_import is the app's own init_import_ms), then the app's own phases of the first
request (its timings_ms / Server-Timing: import of the HTTP app, fetch, verify, session_create,
first_inference, ...), and the totals: from `podman run` and from the container's start to the
first result. Beside them, in the same runs, the floor: the same image with a bare script for an
entrypoint (numpy, ONNX Runtime, Pillow and docfn's OCR engine on the pack already on local disk: no
runtime, no web stack, no S3, no cache), which times its imports, the session build, the first and a
second (warm) read of the same page. Container start plus the floor's warm read is what any design
of this function would need to the first result if Python, imports, the pack and ONNX Runtime's
first run cost nothing. Writes image_cold_start.{json,md}; ``--quick``: one run, ocr only.

Sizes (--sizes): `podman image inspect` size per built image, the shared base, what each strip step
of functions/Dockerfile saved (the image's /opt/venv/share/docfn-image/stripped.tsv), the largest
installed distributions, and measured candidates the Dockerfile deliberately keeps. Writes
image_size.json and the tables between the markers in docs/image.md (image_size.md instead when
``--out`` is not docs/benchmarks).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks import harness
from docfn_testkit.caches import pack_store
from docfn_testkit.containers import (
    REGION,
    Container,
    RieFunction,
    build_image,
    build_packs,
    ensure_container_host,
    inspect_image,
    pack_ref,
    podman,
    publish_pack,
    rie_binary,
    server_timing,
    strip_report,
)
from docfn_testkit.events import function_url_event
from docfn_testkit.paths import DEVSET, ROOT, SAMPLE_PAGE
from docfn_testkit.servers import AWS_TEST_CREDENTIALS, DocfnServer, S3Server
from docfn_testkit.terraform_env import evaluate as evaluate_terraform

DOC = ROOT / "docs" / "image.md"
BUCKET = "docfn-bench"
# What Terraform gives each function that is not an address of the cloud (the bucket, the cache and
# the X-Ray daemon are this machine's, below): the evaluated HCL, never a copy.
CLOUD_ONLY = ("DOCFN_BUCKET", "DOCFN_REDIS_URL", "DOCFN_REDIS_AUTH_SECRET_ARN", "DOCFN_TRACING")


def terraform_settings(task: str) -> tuple[dict[str, str], dict[str, str]]:
    """(pack variable -> "NAME/VERSION", other DOCFN_ settings) of the task's Terraform environment."""
    environment = evaluate_terraform()["environment"][task]
    packs = {name: ref[1] for name, value in environment.items() if (ref := pack_ref(str(value)))}
    settings = {
        name: str(value)
        for name, value in environment.items()
        if name.startswith("DOCFN_") and name not in packs and name not in CLOUD_ONLY
    }
    return packs, settings


# The inputs of the first request: the sample page the package ships (the input of
# docs/benchmarks/cold_start.md) and a full devset page.
INPUTS = {
    "sample page": SAMPLE_PAGE,
    "devset 003": DEVSET / "003.png",
}
TARGET_FIRST_OCR_S = 1.0
# The same first OCR request to a fresh `docfn serve` process on the host: what the container adds.
HOST_BASELINE = "baseline: ocr, sample page, host process"
BASE = "localhost/docfn-python:3.11-slim-bookworm"


def started_at(container_state: dict[str, Any]) -> float:
    """podman's StartedAt (RFC 3339 with nanoseconds) as a Unix timestamp."""
    text = container_state["StartedAt"]
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if not match:  # podman's Go format: 2026-11-25 19:38:26.593 +0000 UTC
        match = re.match(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d+)? ([+-]\d{4})", text)
        assert match, text
        stamp = datetime.strptime(f"{match.group(1)}T{match.group(2)}{match.group(4)}", "%Y-%m-%dT%H:%M:%S%z")
        return stamp.timestamp() + float(match.group(3) or 0)
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    stamp = datetime.fromisoformat(match.group(1) + zone)
    return stamp.timestamp() + float(match.group(2) or 0)


def one_cold_start(task: str, page: Path, image: Any, env: dict[str, str], rie: Path) -> dict[str, float]:
    event = function_url_event(
        "POST", f"/v1/{task}", page.read_bytes(), content_type="image/png", base64_body=True
    )
    function = RieFunction(image, env, rie)
    wall0 = time.time()
    t0 = time.perf_counter()
    try:
        function.start(timeout=30)
        response = function.invoke(event, timeout=300)
        elapsed = time.perf_counter() - t0
        wall_done = wall0 + elapsed
        assert response["statusCode"] == 200, response.get("body")
        body = json.loads(response["body"])
        assert body["cold"] is True
        headers = {k.lower(): v for k, v in response["headers"].items()}
        state = function.container.state()
        logs = function.container.logs()
    finally:
        function.stop()
    start = started_at(state)
    phases = {
        "container_start": start - wall0,
    }
    init = re.search(r"INIT REPORT\(durationMs: ([\d.]+)\)", logs)
    if init:
        phases["runtime_init"] = float(init.group(1)) / 1000
    for line in logs.splitlines():
        if '"init_import_ms"' in line and '"cold_start": true' in line:
            phases["handler_import"] = json.loads(line[line.index("{") :])["init_import_ms"] / 1000
    app = {name: ms / 1000 for name, ms in body["timings_ms"].items()}
    header = server_timing(headers.get("server-timing", ""))
    assert set(header) <= set(app) | {"total"}, (header, app)
    phases.update({f"app_{name}": seconds for name, seconds in app.items()})
    phases["total_from_podman_run"] = elapsed
    phases["total_from_container_start"] = wall_done - start
    return phases


# Runs inside the image (its python), pack and page mounted read-only: wall-clock stamps (the host's
# clock, one kernel) so the bench can place them against the container's StartedAt.
FLOOR_PROBE = r"""
import time
t0 = time.time()
import json
from pathlib import Path
import numpy
import onnxruntime
from PIL import Image
from docfn.packs.manifest import verify_pack
from docfn.tasks.ocr.engine import OcrEngine
t_imports = time.time()
pack = Path("/pack")
engine = OcrEngine(pack, verify_pack(pack))
t_sessions = time.time()
page = numpy.asarray(Image.open("/page.png").convert("RGB"))
lines = engine.recognize_lines(page)
t_first = time.time()
engine.recognize_lines(page)
t_warm = time.time()
print(json.dumps({"python_start": t0, "imports": t_imports - t0, "sessions": t_sessions - t_imports,
    "first_inference": t_first - t_sessions, "warm_inference": t_warm - t_first, "first_done": t_first,
    "lines": len(lines)}))
"""
FLOOR = "floor: ocr, sample page, bare script in the image"


def one_floor_run(image: Any, pack: Path, page: Path) -> dict[str, float]:
    """The floor (module docstring): the bare OCR script as the image's entrypoint, offline."""
    with tempfile.TemporaryDirectory(prefix="docfn-floor-") as scratch:
        # The image's user is not root: the pack and page go in world-readable copies.
        readable = Path(scratch)
        readable.chmod(0o755)
        shutil.copytree(pack, readable / "pack")
        shutil.copy(page, readable / "page.png")
        for path in readable.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        container = Container(
            image.tag,
            args=["-c", FLOOR_PROBE],
            entrypoint=["python"],
            network="none",
            volumes=[f"{readable / 'pack'}:/pack:ro", f"{readable / 'page.png'}:/page.png:ro"],
        )
        wall0 = time.time()
        with container:
            assert container.wait(timeout=300) == 0, container.logs()
            state = container.state()
            probe = json.loads(container.logs().strip().splitlines()[-1])
    start = started_at(state)
    return {
        "container_start": start - wall0,
        "python_start": probe["python_start"] - start,
        "imports": probe["imports"],
        "session_create": probe["sessions"],
        "first_inference": probe["first_inference"],
        "warm_inference": probe["warm_inference"],
        "total_from_container_start": probe["first_done"] - start,
        "bound_start_plus_warm_inference": probe["python_start"] - start + probe["warm_inference"],
    }


def one_host_cold_start(task: str, page: Path, env: dict[str, str]) -> dict[str, float]:
    """The same first request to a fresh `docfn serve` process on the host (no container), as a baseline."""
    with tempfile.TemporaryDirectory(prefix="docfn-bench-store-") as store:
        server = DocfnServer({**env, "DOCFN_TASKS": task, "DOCFN_MODEL_STORE": store})
        # Nothing of this machine's own DOCFN_ or AWS_ settings: only what the image would be given.
        server.env = {
            name: value
            for name, value in server.env.items()
            if not name.startswith(("DOCFN_", "AWS_"))
            or name in env
            or name in ("DOCFN_TASKS", "DOCFN_MODEL_STORE")
        }
        t0 = time.perf_counter()
        try:
            server.start()  # returns once the port listens
            listening = time.perf_counter() - t0
            response = httpx.post(
                f"{server.url}/v1/{task}",
                content=page.read_bytes(),
                headers={"content-type": "image/png"},
                timeout=300,
            )
            elapsed = time.perf_counter() - t0
        finally:
            if server.process is not None:
                server.stop()
    assert response.status_code == 200, response.text
    body = response.json()
    phases = {"process_to_listening": listening}
    phases.update({f"app_{name}": ms / 1000 for name, ms in body["timings_ms"].items()})
    phases["total_from_process_start"] = elapsed
    return phases


def cold_starts(tasks: list[str], runs: int, build: bool) -> dict[str, Any]:
    ensure_container_host()
    images = {
        task: inspect_image(build_image(task) if build else f"localhost/docfn-{task}:dev") for task in tasks
    }
    configured = {task: terraform_settings(task) for task in tasks}
    refs = {ref for packs, _ in configured.values() for ref in packs.values()}
    store = build_packs({ref.split("/")[0] for ref in refs}, pack_store())
    rie = rie_binary()
    moto = S3Server().start()
    try:
        moto.bucket(BUCKET)
        uris = {ref: publish_pack(store, ref, BUCKET, moto.endpoint_url) for ref in refs}
        cases = [(task, name) for task in tasks for name in INPUTS]
        results: dict[str, list[dict[str, float]]] = {f"{task}, {name}": [] for task, name in cases}
        baseline = "ocr" in tasks
        if baseline:
            results[HOST_BASELINE] = []
            results[FLOOR] = []
            ocr_pack = store / configured["ocr"][0]["DOCFN_MODEL_URI"]
        load_before = harness.load_average()
        for run in range(runs):
            for task, name in cases:  # interleaved, so drift on the machine hits every case alike
                packs, settings = configured[task]
                env = {
                    **AWS_TEST_CREDENTIALS,
                    "AWS_DEFAULT_REGION": REGION,
                    "AWS_REGION": REGION,
                    **settings,
                    "DOCFN_S3_ENDPOINT_URL": moto.endpoint_url,
                    **{variable: uris[ref] for variable, ref in packs.items()},
                }
                phases = one_cold_start(task, INPUTS[name], images[task], env, rie)
                results[f"{task}, {name}"].append(phases)
                print(
                    f"run {run + 1}/{runs} {task}, {name}: "
                    + ", ".join(f"{k} {v:.3f}" for k, v in phases.items()),
                    file=sys.stderr,
                )
            if baseline:
                env = {
                    **AWS_TEST_CREDENTIALS,
                    "AWS_DEFAULT_REGION": REGION,
                    "DOCFN_S3_ENDPOINT_URL": moto.endpoint_url,
                    **configured["ocr"][1],
                    "DOCFN_MODEL_URI": uris[configured["ocr"][0]["DOCFN_MODEL_URI"]],
                }
                phases = one_host_cold_start("ocr", INPUTS["sample page"], env)
                results[HOST_BASELINE].append(phases)
                text = ", ".join(f"{k} {v:.3f}" for k, v in phases.items())
                print(f"run {run + 1}/{runs} {HOST_BASELINE}: {text}", file=sys.stderr)
                phases = one_floor_run(images["ocr"], ocr_pack, INPUTS["sample page"])
                results[FLOOR].append(phases)
                text = ", ".join(f"{k} {v:.3f}" for k, v in phases.items())
                print(f"run {run + 1}/{runs} {FLOOR}: {text}", file=sys.stderr)
        load_after = harness.load_average()
    finally:
        moto.stop()
    summary = {}
    for task, rows in results.items():
        keys = [k for k in rows[0] if all(k in r for r in rows)]
        summary[task] = {
            k: {
                "median": statistics.median(r[k] for r in rows),
                "min": min(r[k] for r in rows),
                "max": max(r[k] for r in rows),
            }
            for k in keys
        }
    return {
        "what": "cold start of the function image under the real Lambda RIE: podman run -> first result",
        "machine": {
            **harness.machine(),
            "platform": platform.platform(),
            # 1-minute load average when the runs started and ended: other work on the machine shows here.
            "loadavg_1m_before_after": [load_before[0], load_after[0]],
        },
        "runs": runs,
        "images": {task: {"tag": image.tag, "size_bytes": image.size} for task, image in images.items()},
        "target_first_ocr_result_s": TARGET_FIRST_OCR_S,
        "runs_seconds": results,
        "summary_seconds": summary,
    }


def cold_start_markdown(data: dict[str, Any]) -> str:
    tasks = list(data["summary_seconds"])
    keys: list[str] = []
    for task in tasks:
        keys += [k for k in data["summary_seconds"][task] if k not in keys]
    load = data["machine"]["loadavg_1m_before_after"]
    lines = [
        "# Function image cold start",
        "",
        "Fresh container of the built image per run (`podman run`, read-only root, tmpfs /tmp) behind the "
        "real AWS Lambda RIE; pack fetched from moto S3 on the host loopback; one page; median (min-max) of "
        f"{data['runs']} interleaved runs on {data['machine']['cpus']} CPUs (1-minute load average {load[0]} "
        f"before, {load[1]} after). Seconds. `app_*` are the app's own phases of the first request "
        "(timings_ms / Server-Timing); runtime_init is RIE's INIT REPORT (Python, awslambdaric and the "
        "handler import, of which handler_import is the app's init_import_ms).",
        "",
        "| phase | " + " | ".join(tasks) + " |",
        "|---|" + "---|" * len(tasks),
    ]
    for key in keys:
        cells = []
        for task in tasks:
            stats = data["summary_seconds"][task].get(key)
            cells.append(f"{stats['median']:.3f} ({stats['min']:.3f}-{stats['max']:.3f})" if stats else "")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    headline = "ocr, sample page"
    if headline in data["summary_seconds"]:
        ocr = data["summary_seconds"][headline]
        first = ocr["total_from_container_start"]["median"]
        run_total = ocr["total_from_podman_run"]["median"]
        verdict = "meets" if first <= TARGET_FIRST_OCR_S else "misses"
        lines += [
            "",
            f"Target: first OCR result within {TARGET_FIRST_OCR_S:.1f} s. {headline}: median {first:.2f} s "
            f"from the container's start ({run_total:.2f} s from `podman run`): {verdict} the target.",
        ]
    if FLOOR in data["summary_seconds"]:
        floor = data["summary_seconds"][FLOOR]
        bound = floor["bound_start_plus_warm_inference"]["median"]
        lines += [
            "",
            "Floor: the bare script reached its first result "
            f"{floor['total_from_container_start']['median']:.2f} s after its container started; the "
            "container's start plus one warm read of the page alone is "
            f"{bound:.2f} s, what any design would need if Python, imports, the pack download and ONNX "
            "Runtime's first run cost nothing.",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- sizes

SIZE_PROBE = r"""
import json, os, sys, sysconfig
site = sysconfig.get_paths()["purelib"]
def size(path):
    if os.path.isfile(path) or os.path.islink(path):
        return os.lstat(path).st_size
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(path) for f in fs)
entries = {name: size(os.path.join(site, name)) for name in os.listdir(site)}
def total(predicate):
    files = ((d, f) for d, _, fs in os.walk(site) for f in fs)
    return sum(os.lstat(os.path.join(d, f)).st_size for d, f in files if predicate(d, f))
candidates = {
    ".dist-info RECORD files": total(lambda d, f: f == "RECORD" and d.endswith(".dist-info")),
    ".py sources (a sourceless venv)": total(lambda d, f: f.endswith(".py")),
    "google/protobuf (onnxruntime's tools only)": size(os.path.join(site, "google")),
    "Pillow font support (freetype, harfbuzz, brotli)": total(
        lambda d, f: d.endswith("pillow.libs") and f.startswith(("libfreetype", "libharfbuzz", "libbrotli"))
    ),
    "numpy.testing": size(os.path.join(site, "numpy", "testing")),
    "__pycache__ of everything": total(lambda d, f: d.endswith("__pycache__")),
}
print(json.dumps({"venv": size("/opt/venv"), "entries": entries, "candidates": candidates}))
"""


def sizes(tasks: list[str], build: bool) -> dict[str, Any]:
    ensure_container_host()
    images = {
        task: inspect_image(build_image(task) if build else f"localhost/docfn-{task}:dev") for task in tasks
    }
    base = inspect_image(BASE)
    tag = images[tasks[0]].tag
    strips = strip_report(tag)
    probe = json.loads(
        podman("run", "--rm", "--network", "none", "--entrypoint", "python", tag, "-c", SIZE_PROBE).stdout
    )
    return {
        "images": {task: image.size for task, image in images.items()},
        "base": {"tag": BASE, "size_bytes": base.size},
        "venv_bytes": probe["venv"],
        "strips_bytes": dict(strips),
        "venv_before_strips_bytes": probe["venv"] + sum(saved for _, saved in strips),
        "largest_entries_bytes": dict(sorted(probe["entries"].items(), key=lambda kv: -kv[1])[:15]),
        "kept_candidates_bytes": probe["candidates"],
    }


def mb(value: int) -> str:
    return f"{value / 1e6:.1f}"


def sizes_markdown(data: dict[str, Any]) -> str:
    lines = [
        f"Sizes as `podman image inspect` reports them (bytes / 10^6 = MB), from `{harness.command()}`.",
        "",
        "| image | MB |",
        "|---|---|",
        *(f"| `localhost/docfn-{task}:dev` | {mb(size)} |" for task, size in data["images"].items()),
        f"| base `{data['base']['tag']}` (shared layer) | {mb(data['base']['size_bytes'])} |",
        f"| /opt/venv in the image (shared layer) | {mb(data['venv_bytes'])} |",
        "",
        "What each strip step in functions/Dockerfile saved (measured during the build, in order):",
        "",
        "| step | MB saved |",
        "|---|---|",
        *(f"| {label} | {mb(saved)} |" for label, saved in data["strips_bytes"].items()),
        f"| **total** (venv {mb(data['venv_before_strips_bytes'])} -> {mb(data['venv_bytes'])}) | "
        f"**{mb(sum(data['strips_bytes'].values()))}** |",
        "",
        "Largest entries of site-packages now:",
        "",
        "| entry | MB |",
        "|---|---|",
        *(f"| {name} | {mb(size)} |" for name, size in data["largest_entries_bytes"].items()),
        "",
        "Measured but kept (see below for why):",
        "",
        "| candidate | MB |",
        "|---|---|",
        *(f"| {name} | {mb(size)} |" for name, size in data["kept_candidates_bytes"].items()),
    ]
    return "\n".join(lines) + "\n"


def replace_between_markers(path: Path, name: str, content: str) -> None:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n{content}{end}{tail}"
    else:
        text += f"\n{begin}\n{content}{end}\n"
    path.write_text(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=5, help="cold starts per case (--quick: 1)")
    parser.add_argument("--tasks", default="ocr,parse", help="function images, comma list (--quick: ocr)")
    parser.add_argument(
        "--no-build", action="store_true", help="use the images already built (localhost/docfn-TASK:dev)"
    )
    parser.add_argument("--sizes", action="store_true", help="measure sizes instead of cold starts")


def run(args: argparse.Namespace) -> int:
    tasks = ["ocr"] if args.quick else [t for t in args.tasks.split(",") if t]
    if args.sizes:
        data = sizes(tasks, build=not args.no_build)
        harness.write_json(args.out, "image_size", data)
        markdown = sizes_markdown(data)
        if args.out.resolve() == harness.OUT.resolve():
            replace_between_markers(DOC, "sizes", markdown)
        else:  # a trial run leaves docs/image.md as measured
            (args.out / "image_size.md").write_text(markdown)
        print(markdown)
        return 0
    data = cold_starts(tasks, 1 if args.quick else args.runs, build=not args.no_build)
    print(harness.write_report(args.out, "image_cold_start", data, cold_start_markdown(data)))
    return 0
