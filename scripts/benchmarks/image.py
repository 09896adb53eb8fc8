"""The function images as shipped: cold start by phase inside the container, and image sizes.

Cold start (default): for each task (ocr, parse) and each variant of the function (below), N
interleaved runs of a fresh container behind the real AWS Lambda Runtime Interface Emulator,
read-only root, empty /tmp, Terraform's environment for the task (infra/terraform evaluated by
docfn_testkit.terraform_env: eager load, X-Ray tracing with no daemon listening, the bucket) plus
what Lambda itself sets and RIE does not (``LAMBDA_TASK_ROOT``: with it the X-Ray SDK samples
locally and adds subsegments to the runtime's segment, as on Lambda; without it, it builds a botocore
``xray`` client for central sampling, 0.19 s on the host; RIE hands the runtime no trace header, so the
subsegments are made and then discarded where Lambda would send them), the model packs fetched from
a moto S3 server on the host's loopback, the result cache off (no Redis, DOCFN_MEMORY_CACHE_ENTRIES=0),
the sample page:

    podman run -> container started -> runtime init -> first result -> the same page again (warm)

**The cold penalty** (issue 26): the first result's time from the container's start minus a warm
request of the same page in the same container (both measured by the client, RIE included), and
the same from `podman run` (podman's own start included). Phases: container_start (podman run
until the container's process started, podman's StartedAt), runtime_init (RIE's INIT REPORT:
Python + awslambdaric + importing the image's CMD handler, of which handler_import is the app's own
init_import_ms), then the app's own phases of the first request (its timings_ms / Server-Timing:
import of the HTTP app, fetch, verify, session_create, first_inference, ...). Beside them, in the
same runs, the floor: the same image with a bare script for an entrypoint (numpy, ONNX Runtime,
Pillow and docfn's OCR engine on the pack already on local disk: no runtime, no web stack, no S3, no
cache), which times its imports, the session build, the first and a second (warm) read of the
page; its cold penalty is its first result from the container's start minus its warm read.

Variants (``--compare BASE_TAG``, e.g. ``cold-base``: images of the code before the levers):
``base`` (localhost/docfn-TASK:BASE_TAG), ``levers`` (this tree's image: the redis/pybreaker import
only with Redis, the pack prefetch process), ``levers, no prefetch`` (DOCFN_PACK_PREFETCH=0),
``levers, optimised graphs`` (packs whose ONNX files are ONNX Runtime's saved EXTENDED graphs,
published under VERSION-opt and loaded as ever, at level ALL), ``levers, packs baked``
(``scripts/build_image TASK --with-packs``: DOCFN_BAKED_PACKS, no S3 fetch). ``--graphs`` adds an
in-process measurement on the host: session build and run of each model as shipped, saved at
EXTENDED and loaded with optimisation disabled, and saved at EXTENDED loaded at ALL. Writes
image_cold_start.{json,md}; ``--quick``: one run, ocr only. Without ``--compare``: ``--prefetch``
(DOCFN_PACK_PREFETCH=1), ``--before TAG`` (an earlier tree's images) and ``--rie-env`` (RIE's
environment alone: what runs before 2026-12-07 measured) add variants, interleaved.

Sizes (--sizes): `podman image inspect` size per built image, the shared base, what each strip step
of functions/Dockerfile saved (the image's /opt/venv/share/docfn-image/stripped.tsv), the largest
installed distributions, and measured candidates the Dockerfile deliberately keeps. Writes
image_size.json and the tables between the markers in docs/image.md (image_size.md instead when
``--out`` is not docs/benchmarks).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import threading
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
    lambda_environment,
    pack_ref,
    podman,
    publish_pack,
    rie_binary,
    server_timing,
    strip_report,
)
from docfn_testkit.events import function_url_event
from docfn_testkit.paths import ROOT, SAMPLE_PAGE
from docfn_testkit.servers import AWS_TEST_CREDENTIALS, DocfnServer, S3Server, free_port, wait_for_port
from docfn_testkit.terraform_env import evaluate as evaluate_terraform

DOC = ROOT / "docs" / "image.md"
BUCKET = "docfn-bench"
# What Terraform gives each function that is an address of the cloud: replaced by this machine's.
# The result cache is off (issue 26): no Redis, and the in-process LRU holds nothing.
CLOUD_ONLY = ("DOCFN_BUCKET", "DOCFN_REDIS_URL", "DOCFN_REDIS_AUTH_SECRET_ARN")
CACHE_OFF = {"DOCFN_MEMORY_CACHE_ENTRIES": "0"}


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


PAGE = SAMPLE_PAGE
TARGET_PENALTY_S = {"ocr": 0.5, "parse": 1.0}
# The same first OCR request to a fresh `docfn serve` process on the host: what the container adds.
HOST_BASELINE = "baseline: ocr, host process"
BASE = "localhost/docfn-python:3.11-slim-bookworm"
OPT_SUFFIX = "-opt"


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
    """A fresh container: the first request (cold), then the same page again (warm), same container."""
    event = function_url_event(
        "POST", f"/v1/{task}", page.read_bytes(), content_type="image/png", base64_body=True
    )
    function = RieFunction(image, env, rie)
    wall0 = time.time()
    t0 = time.perf_counter()
    # `podman run -d` returns well after the container started (more so on a busy machine), and RIE
    # starts the runtime only when the first invoke arrives: the invoke goes as soon as RIE listens,
    # polled beside `podman run`, as on Lambda where the request is waiting when the sandbox starts.
    starting = threading.Thread(target=function.container.start, daemon=True)
    try:
        starting.start()
        wait_for_port(function.port, timeout=60)
        sent = time.perf_counter() - t0
        response = function.invoke(event, timeout=300)
        elapsed = time.perf_counter() - t0
        wall_done = wall0 + elapsed
        starting.join(timeout=60)
        warm_start = time.perf_counter()
        warm = function.invoke(event, timeout=300)
        warm_request = time.perf_counter() - warm_start
        assert response["statusCode"] == 200, response.get("body")
        assert warm["statusCode"] == 200, warm.get("body")
        body, warm_body = json.loads(response["body"]), json.loads(warm["body"])
        assert body["cold"] is True and warm_body["cold"] is False
        assert not warm_body.get("cached"), "the result cache must be off"
        assert warm_body["timings_ms"].get("inference"), warm_body["timings_ms"]
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
        if '"prefetch"' in line and '"seconds"' in line:
            phases["prefetch_process"] = json.loads(line[line.index("{") :])["seconds"]
    app = {name: ms / 1000 for name, ms in body["timings_ms"].items()}
    header = server_timing(headers.get("server-timing", ""))
    assert set(header) <= set(app) | {"total"}, (header, app)
    phases.update({f"app_{name}": seconds for name, seconds in app.items()})
    phases["invoke_sent"] = wall0 + sent - start  # after the container's start
    phases["total_from_podman_run"] = elapsed
    phases["total_from_container_start"] = wall_done - start
    phases["warm_request"] = warm_request
    phases["warm_app_inference"] = warm_body["timings_ms"]["inference"] / 1000
    phases["cold_penalty"] = phases["total_from_container_start"] - warm_request
    phases["cold_penalty_from_podman_run"] = elapsed - warm_request
    phases["cold_penalty_from_invoke"] = elapsed - sent - warm_request
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
        "cold_penalty": probe["first_done"] - start - probe["warm_inference"],
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


def optimised_pack(store: Path, ref: str) -> str:
    """A copy of pack ``ref`` ("NAME/VERSION") whose ONNX files are ONNX Runtime's saved EXTENDED
    graphs (docfn.tooling.optimize), as NAME/VERSION-opt in ``store``; its "NAME/VERSION" ref."""
    from docfn.packs.manifest import Manifest, describe_file, verify_pack
    from docfn.tooling.optimize import LEVEL_NAME, save_optimised

    name, version = ref.split("/")
    target = store / name / f"{version}{OPT_SUFFIX}"
    if target.is_dir():
        verify_pack(target)
        return f"{name}/{version}{OPT_SUFFIX}"
    source = store / ref
    manifest = verify_pack(source)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-opt-", dir=store))
    files = []
    for entry in manifest.files:
        (staging / entry.path).parent.mkdir(parents=True, exist_ok=True)
        if entry.path.endswith(".onnx"):
            save_optimised(source / entry.path, staging / entry.path)
        else:
            shutil.copy(source / entry.path, staging / entry.path)
        files.append(describe_file(staging, entry.path, entry.role))
    extra = {**manifest.extra, "graph_optimisation": LEVEL_NAME}
    Manifest(
        manifest.name, f"{version}{OPT_SUFFIX}", manifest.tasks, manifest.runtime, manifest.precision,
        files, manifest.source, manifest.config, manifest.accuracy, extra,
    ).write(staging)  # fmt: skip
    verify_pack(staging)
    staging.rename(target)
    return f"{name}/{version}{OPT_SUFFIX}"


# What the ``RIE's environment`` variant blanks: the variables Lambda sets that RIE does not (an empty
# value reads as unset to docfn and the X-Ray SDK), so it measures what earlier runs measured.
LAMBDA_ONLY_VARIABLES = (
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "TZ",
    "AWS_LAMBDA_FUNCTION_TIMEOUT",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
)
RIE_ENV = "RIE's environment"


def tagged_images(tasks: list[str], tag: str) -> dict[str, Any]:
    """task -> the built image ``localhost/docfn-TASK:TAG`` (an earlier tree's, for comparison)."""
    return {task: inspect_image(f"localhost/docfn-{task}:{tag}") for task in tasks}


def variants(
    tasks: list[str],
    build: bool,
    compare: str | None,
    prefetch: bool = False,
    before: str | None = None,
    rie_env: bool = False,
) -> dict[str, dict[str, Any]]:
    """label -> {task: image} and how the variant differs (env, optimised packs)."""
    tag = os.environ.get("DOCFN_IMAGE_TAG", "dev")  # what scripts/build_image names its images
    ours, baked = {}, {}
    for task in tasks:
        if build:  # --with-packs builds the image itself first
            built = build_image(task, with_packs=compare is not None).removesuffix("-packs")
        else:
            built = f"localhost/docfn-{task}:{tag}"
        ours[task] = inspect_image(built)
        if compare is not None:
            baked[task] = inspect_image(f"{built}-packs")
    if compare is None:
        shipped = {"": {"images": ours, "env": {}, "optimised": False}}
        if prefetch:  # the pack prefetch process (off by default) beside the shipped default
            shipped["prefetch"] = {"images": ours, "env": {"DOCFN_PACK_PREFETCH": "1"}, "optimised": False}
        if before:  # images of an earlier tree, side by side
            shipped[f"before ({before})"] = {
                "images": tagged_images(tasks, before),
                "env": {},
                "optimised": False,
            }
        if rie_env:  # as RIE alone starts the runtime
            blank = dict.fromkeys(LAMBDA_ONLY_VARIABLES, "")
            shipped[RIE_ENV] = {"images": ours, "env": blank, "optimised": False}
        return shipped
    return {
        "base": {"images": tagged_images(tasks, compare), "env": {}, "optimised": False},
        "levers": {"images": ours, "env": {}, "optimised": False},
        "levers, no prefetch": {"images": ours, "env": {"DOCFN_PACK_PREFETCH": "0"}, "optimised": False},
        "levers, optimised graphs": {"images": ours, "env": {}, "optimised": True},
        "levers, packs baked": {"images": baked, "env": {}, "optimised": False},
    }


def case_name(task: str, variant: str) -> str:
    return f"{task}, {variant}" if variant else f"{task}, sample page"


def cold_starts(
    tasks: list[str],
    runs: int,
    build: bool,
    compare: str | None = None,
    prefetch: bool = False,
    before: str | None = None,
    rie_env: bool = False,
) -> dict[str, Any]:
    ensure_container_host()
    kinds = variants(tasks, build, compare, prefetch, before, rie_env)
    configured = {task: terraform_settings(task) for task in tasks}
    refs = {ref for packs, _ in configured.values() for ref in packs.values()}
    store = build_packs({ref.split("/")[0] for ref in refs}, pack_store())
    optimised = {ref: optimised_pack(store, ref) for ref in refs} if compare else {}
    rie = rie_binary()
    moto = S3Server().start()
    xray_port = free_port()  # X-Ray's daemon address: nothing listens there (UDP: sends never fail)
    try:
        moto.bucket(BUCKET)
        uris = {
            ref: publish_pack(store, ref, BUCKET, moto.endpoint_url) for ref in {*refs, *optimised.values()}
        }
        cases = [(task, variant) for variant in kinds for task in tasks]
        results: dict[str, list[dict[str, float]]] = {case_name(*case): [] for case in cases}
        baseline = "ocr" in tasks
        if baseline:
            results[HOST_BASELINE] = []
            results[FLOOR] = []
            ocr_pack = store / configured["ocr"][0]["DOCFN_MODEL_URI"]
        load_before = harness.load_average()
        for run in range(runs):
            for task, variant in cases:  # interleaved, so drift on the machine hits every case alike
                packs, settings = configured[task]
                kind = kinds[variant]
                env = {
                    # What Lambda itself sets and RIE leaves out (LAMBDA_TASK_ROOT above all: on
                    # Lambda the X-Ray SDK samples locally and adds subsegments to the runtime's
                    # segment; without it, it builds a botocore client for central sampling).
                    **lambda_environment(f"docfn-{task}"),
                    "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{xray_port}",
                    **settings,
                    **CACHE_OFF,
                    "DOCFN_BUCKET": BUCKET,
                    "DOCFN_S3_ENDPOINT_URL": moto.endpoint_url,
                    **{
                        variable: uris[optimised[ref] if kind["optimised"] else ref]
                        for variable, ref in packs.items()
                    },
                    **kind["env"],
                }
                phases = one_cold_start(task, PAGE, kind["images"][task], env, rie)
                results[case_name(task, variant)].append(phases)
                print(
                    f"run {run + 1}/{runs} {case_name(task, variant)}: "
                    + ", ".join(f"{k} {v:.3f}" for k, v in phases.items()),
                    file=sys.stderr,
                )
            if baseline:
                env = {
                    **AWS_TEST_CREDENTIALS,
                    "AWS_DEFAULT_REGION": REGION,
                    "DOCFN_S3_ENDPOINT_URL": moto.endpoint_url,
                    **configured["ocr"][1],
                    **CACHE_OFF,
                    "DOCFN_MODEL_URI": uris[configured["ocr"][0]["DOCFN_MODEL_URI"]],
                }
                env.pop("DOCFN_TRACING", None)  # no X-Ray daemon address on the host
                phases = one_host_cold_start("ocr", PAGE, env)
                results[HOST_BASELINE].append(phases)
                text = ", ".join(f"{k} {v:.3f}" for k, v in phases.items())
                print(f"run {run + 1}/{runs} {HOST_BASELINE}: {text}", file=sys.stderr)
                image = kinds["levers" if compare else ""]["images"]["ocr"]
                phases = one_floor_run(image, ocr_pack, PAGE)
                results[FLOOR].append(phases)
                text = ", ".join(f"{k} {v:.3f}" for k, v in phases.items())
                print(f"run {run + 1}/{runs} {FLOOR}: {text}", file=sys.stderr)
        load_after = harness.load_average()
    finally:
        moto.stop()
    data = {"runs_seconds": results}
    add_derived(data)
    summary = {}
    for case, rows in results.items():
        keys = [k for k in rows[0] if all(k in r for r in rows)]
        summary[case] = {
            k: {
                "median": statistics.median(r[k] for r in rows),
                "min": min(r[k] for r in rows),
                "max": max(r[k] for r in rows),
            }
            for k in keys
        }
    return {
        "what": "cold start of the function image under the real Lambda RIE: podman run -> first result,"
        " then the same page warm in the same container; cold penalty = first result from the"
        " container's start - the warm request",
        "machine": {
            **harness.machine(),
            "platform": platform.platform(),
            # 1-, 5- and 15-minute load averages when the runs started and ended.
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "runs": runs,
        "page": str(PAGE.relative_to(ROOT)),
        "variants": {
            label: {
                "images": {task: image.tag for task, image in kind["images"].items()},
                "env": kind["env"],
                "optimised_graphs": kind["optimised"],
            }
            for label, kind in kinds.items()
        },
        "target_cold_penalty_s": TARGET_PENALTY_S,
        "runs_seconds": results,
        "summary_seconds": summary,
    }


# The first request's own path once the invoke arrived (with DOCFN_EAGER_LOAD the fetch, verify,
# session build and warm-up run in the init thread: the request waits only load_wait for them).
REQUEST_PATH = (
    "app_import",
    "app_decode",
    "app_cache_get",
    "app_load_wait",
    "app_first_inference",
    "app_cache_set",
)


def add_derived(data: dict[str, Any]) -> None:
    """``outside_phases`` for each cold start: what no phase counts, from the container's start to the
    first result: the wait for the service the init thread builds, the tracer's first span (the
    X-Ray SDK's import), the event's way through Mangum and RIE."""
    for rows in data["runs_seconds"].values():
        for row in rows:
            if "runtime_init" in row and "invoke_sent" in row:
                counted = (
                    row["invoke_sent"] + row["runtime_init"] + sum(row.get(k, 0.0) for k in REQUEST_PATH)
                )
                row["outside_phases"] = row["total_from_container_start"] - counted


# The rows of the table, in order: the phases of issue 26, then the totals.
ROWS = [
    "container_start",
    "invoke_sent",
    "runtime_init",
    "handler_import",
    "prefetch_process",
    "app_import",
    "app_decode",
    "app_fetch",
    "app_verify",
    "app_session_create",
    "app_warm_up",
    "app_load_wait",
    "app_first_inference",
    "outside_phases",
    "total_from_podman_run",
    "total_from_container_start",
    "warm_request",
    "warm_app_inference",
    "cold_penalty_from_podman_run",
    "cold_penalty_from_invoke",
    "cold_penalty",
]


def cold_start_markdown(data: dict[str, Any]) -> str:
    cases = list(data["summary_seconds"])
    keys: list[str] = [k for k in ROWS if any(k in data["summary_seconds"][c] for c in cases)]
    for case in cases:
        keys += [k for k in data["summary_seconds"][case] if k not in keys]
    before, after = data["machine"]["loadavg_before"], data["machine"]["loadavg_after"]
    lines = [
        "# Function image cold start",
        "",
        "Fresh container of the built image per run (`podman run`, read-only root, tmpfs /tmp) behind the "
        "real AWS Lambda RIE; Terraform's environment for the task, plus the variables Lambda itself sets "
        "and RIE leaves out (LAMBDA_TASK_ROOT, ...; RIE hands the runtime no trace header, so X-Ray's "
        "subsegments are made and discarded); packs fetched from moto S3 on the host "
        f"loopback; result cache off; `{data['page']}`, first request then the same page warm in the same "
        f"container; median (min-max) of {data['runs']} interleaved runs on {data['machine']['cpus']} CPUs "
        f"(load average 1/5/15 min: {before} before, {after} after). Seconds. `app_*` are the app's own "
        "phases of the first request (timings_ms / Server-Timing); runtime_init is RIE's INIT REPORT "
        "(Python, awslambdaric and the handler import, of which handler_import is the app's "
        "init_import_ms); prefetch_process: the prefetch process's own time, beside the imports. "
        "**cold_penalty** = total_from_container_start - warm_request (issue 26's definition); "
        "cold_penalty_from_podman_run counts podman's own start too; cold_penalty_from_invoke counts from "
        "the moment the invoke was sent (invoke_sent: after the container's start, as soon as RIE listened; "
        "RIE starts the runtime only then).",
        "",
        "Variants: "
        + "; ".join(
            f"`{label or 'this tree'}`: {', '.join(v['images'].values())}"
            + (f" with {v['env']}" if v["env"] else "")
            + (", packs with saved EXTENDED graphs" if v["optimised_graphs"] else "")
            for label, v in data["variants"].items()
        ),
        "",
        "| phase | " + " | ".join(cases) + " |",
        "|---|" + "---|" * len(cases),
    ]
    for key in keys:
        cells = []
        for case in cases:
            stats = data["summary_seconds"][case].get(key)
            cells.append(f"{stats['median']:.3f} ({stats['min']:.3f}-{stats['max']:.3f})" if stats else "")
        bold = key == "cold_penalty"
        lines.append(f"| {'**' + key + '**' if bold else key} | " + " | ".join(cells) + " |")
    lines += ["", "Targets (issue 26): cold penalty <= 0.5 s for ocr, <= 1.0 s for parse.", ""]
    for case in cases:
        task = case.split(",")[0]
        stats = data["summary_seconds"][case]
        if task not in data["target_cold_penalty_s"] or "cold_penalty" not in stats:
            continue
        penalty, target = stats["cold_penalty"]["median"], data["target_cold_penalty_s"][task]
        ratio = penalty / stats["warm_request"]["median"]
        verdict = "met" if penalty <= target else "missed"
        lines.append(
            f"- {case}: cold penalty {penalty:.2f} s (from `podman run`: "
            f"{stats['cold_penalty_from_podman_run']['median']:.2f} s), {ratio:.2f}x its warm request; "
            f"target {target:.1f} s: **{verdict}**."
        )
    if FLOOR in data["summary_seconds"]:
        floor = data["summary_seconds"][FLOOR]
        lines += [
            "",
            "Floor: the bare script reached its first result "
            f"{floor['total_from_container_start']['median']:.2f} s after its container started, a cold "
            f"penalty of {floor['cold_penalty']['median']:.2f} s over its own warm read "
            f"({floor['warm_inference']['median']:.2f} s); the container's start plus one warm read alone is "
            f"{floor['bound_start_plus_warm_inference']['median']:.2f} s.",
        ]
    if "graphs" in data:
        lines += ["", graphs_markdown(data["graphs"])]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- saved optimised graphs

GRAPH_VARIANTS = {
    "as shipped, level ALL (today)": ("source", "ORT_ENABLE_ALL"),
    "saved EXTENDED, optimisation disabled": ("saved", "ORT_DISABLE_ALL"),
    "saved EXTENDED, level ALL": ("saved", "ORT_ENABLE_ALL"),
}


def graphs(store: Path, refs: set[str], repeats: int = 5) -> dict[str, Any]:
    """In one process on the host, interleaved: each model's session build and warm run on the
    pages it reads, as shipped vs ONNX Runtime's saved EXTENDED graph (optimised_pack)."""
    import numpy
    import onnxruntime as ort
    from PIL import Image

    from docfn.core.onnx_sessions import new_session, session_options
    from docfn.packs.manifest import verify_pack

    rgb = numpy.asarray(Image.open(PAGE).convert("RGB"))
    out: dict[str, Any] = {"load_average_before": harness.load_average(), "models": {}}
    for ref in sorted(refs):
        opt_ref = optimised_pack(store, ref)
        manifest = verify_pack(store / ref)
        for entry in manifest.files:
            if not entry.path.endswith(".onnx"):
                continue
            paths = {"source": store / ref / entry.path, "saved": store / opt_ref / entry.path}
            create: dict[str, list[float]] = {k: [] for k in GRAPH_VARIANTS}
            run: dict[str, list[float]] = {k: [] for k in GRAPH_VARIANTS}
            for _ in range(repeats):
                for label, (which, level) in GRAPH_VARIANTS.items():
                    options = session_options(level=getattr(ort.GraphOptimizationLevel, level))
                    started = time.perf_counter()
                    session = new_session(paths[which], options)
                    create[label].append(time.perf_counter() - started)
                    feeds = model_inputs(session, rgb)
                    session.run(None, feeds)
                    started = time.perf_counter()
                    session.run(None, feeds)
                    run[label].append(time.perf_counter() - started)
            out["models"][f"{ref} {entry.role}"] = {
                label: {
                    "session_create_s": statistics.median(create[label]),
                    "run_s": statistics.median(run[label]),
                }
                for label in GRAPH_VARIANTS
            }
    out["load_average_after"] = harness.load_average()
    return out


def model_inputs(session: Any, rgb: Any) -> dict[str, Any]:
    """Inputs of a page-sized run: float images at the page's size (fixed dimensions as declared),
    a text line's height for 48-px recognisers, anything else ones."""
    import numpy

    feeds = {}
    for index, spec in enumerate(session.get_inputs()):
        dims = []
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, int) and dim > 0:
                dims.append(dim)
            elif axis == 0:
                dims.append(1)
            elif axis == 2:
                dims.append(min(rgb.shape[0], 960) // 32 * 32)
            else:
                dims.append(min(rgb.shape[1], 960) // 32 * 32)
        kind = numpy.float32 if "float" in spec.type else numpy.int64
        feeds[spec.name] = numpy.random.default_rng(index).random(dims).astype(kind)
    return feeds


def graphs_markdown(data: dict[str, Any]) -> str:
    labels = list(GRAPH_VARIANTS)
    lines = [
        "Saved optimised graphs, in one process on the host (median of 5, interleaved; load average "
        f"{data['load_average_before']} before, {data['load_average_after']} after): session build / one "
        "warm run on page-sized inputs, ms.",
        "",
        "| model | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for model, row in data["models"].items():
        cells = [f"{1000 * row[k]['session_create_s']:.0f} / {1000 * row[k]['run_s']:.0f}" for k in labels]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    parser.add_argument(
        "--compare",
        metavar="BASE_TAG",
        help="also run localhost/docfn-TASK:BASE_TAG and this tree's levers side by side (module docstring)",
    )
    parser.add_argument(
        "--graphs", action="store_true", help="add the in-process measurement of saved optimised graphs"
    )
    parser.add_argument(
        "--prefetch",
        action="store_true",
        help="without --compare: also run this tree's images with DOCFN_PACK_PREFETCH=1, interleaved",
    )
    parser.add_argument(
        "--before",
        metavar="TAG",
        help="without --compare: also run localhost/docfn-TASK:TAG (an earlier tree's images), interleaved",
    )
    parser.add_argument(
        "--rie-env",
        action="store_true",
        help="without --compare: also run this tree's images in RIE's environment alone (without the"
        " variables Lambda sets, such as LAMBDA_TASK_ROOT), as runs before 2026-12-07 did",
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
    data = cold_starts(
        tasks,
        1 if args.quick else args.runs,
        build=not args.no_build,
        compare=args.compare,
        prefetch=args.prefetch,
        before=args.before,
        rie_env=args.rie_env,
    )
    if args.graphs:
        refs = {ref for task in tasks for ref in terraform_settings(task)[0].values()}
        data["graphs"] = graphs(pack_store(), refs)
    print(harness.write_report(args.out, "image_cold_start", data, cold_start_markdown(data)))
    return 0
