"""The function images as Knative Serving runs them, from the rendered dev overlay (knative/overlays/dev).

Each Service's container runs as its manifest says (docfn_testkit.knative_run: command and args,
environment, user, read-only root, capabilities, limits, tmpfs, port, probes); the only changes are
that in-cluster endpoints (S3, Redis) point at this test's moto and redis-server, and the packs the
manifest names are published to moto exactly where it says (tests/image/conftest.py).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from docfn_testkit.containers import ImageConfig, devset_page, pack_ref, pdf_of_pages, podman, word_recall
from docfn_testkit.knative_run import (
    READY_WITHIN_S,
    KnativeContainer,
    container_of,
    resolve_env,
    services,
    task_of,
)

# A devset page each task's request uses (the table page for table; prose otherwise).
PAGES = {"table": "007", "parse": "008", "layout": "008"}


# Parametrised at collection; a rendering failure is reported by the test below, not as a
# collection error of the whole directory.
try:
    SERVICES = sorted(services())
    RENDER_ERROR: Exception | None = None
except Exception as exc:
    SERVICES, RENDER_ERROR = [], exc


def test_overlay_deploys_functions() -> None:
    if RENDER_ERROR is not None:
        raise RENDER_ERROR
    assert SERVICES, "the dev overlay renders no Knative Service"


@pytest.mark.parametrize("name", SERVICES)
def test_service_runs_from_its_rendered_manifest(
    name: str, knative_container: Callable[[str], KnativeContainer]
) -> None:
    ksvc = services()[name]
    task = task_of(ksvc)
    env = resolve_env(ksvc)
    assert env.get("DOCFN_TASKS", task) == task, "the Service runs docfn-<task> for another task"
    function = knative_container(name)
    if function.run_as_non_root:
        user = (function.container.user or function.image.user or "0").split(":")[0]
        assert user not in ("0", "root"), "runAsNonRoot: the container would run as root"

    # Liveness answers as soon as the server listens; readiness once the pack is loaded.
    function.wait_for("livenessProbe", within=30)
    ready = function.wait_for("readinessProbe", within=READY_WITHIN_S)
    assert ready.status_code == 200, ready.text

    page_id = PAGES.get(task, "003")
    response = httpx.post(
        f"{function.url}/v1/{task}",
        content=devset_page(page_id),
        headers={"content-type": "image/png"},
        timeout=120,
    )
    assert response.status_code == 200, f"{response.text}\n{function.container.logs()}"
    body = response.json()
    assert body["task"] == task and body["result"]
    if env.get("DOCFN_EAGER_LOAD", "").lower() in ("1", "true", "yes"):
        # Eager load: the pack was loaded before readiness; the first request reports that cold start
        # but did not wait for it.
        assert body["cold"] is True and body["timings_ms"]["load_wait"] == 0, body["timings_ms"]
    if task == "ocr":
        assert word_recall(body["result"]["text"], page_id) >= 0.6
    assert "server-timing" in response.headers and response.headers.get("x-request-id")


def _ocr_service() -> str:
    found = [name for name in SERVICES if task_of(services()[name]) == "ocr"]
    if not found:
        pytest.skip("the dev overlay deploys no OCR service")
    return found[0]


def test_sigterm_drains_the_in_flight_request(knative_container: Callable[[str], KnativeContainer]) -> None:
    name = _ocr_service()
    function = knative_container(name)
    function.wait_for("readinessProbe", within=READY_WITHIN_S)
    pages = ["003", "008", "001", "002", "009", "010"]
    document = pdf_of_pages(pages)
    outcome: dict[str, Any] = {}

    def request() -> None:
        try:
            outcome["response"] = httpx.post(
                f"{function.url}/v1/ocr",
                content=document,
                headers={"content-type": "application/pdf"},
                timeout=180,
            )
        except httpx.HTTPError as exc:
            outcome["error"] = exc
        outcome["at"] = time.monotonic()

    thread = threading.Thread(target=request)
    thread.start()
    time.sleep(1.0)  # the request is being processed (six pages take several seconds here)
    signalled = time.monotonic()
    function.container.signal("TERM")
    grace = int(services()[name]["spec"]["template"]["spec"].get("timeoutSeconds", 300))
    exit_code = function.container.wait(timeout=min(grace, 180))
    thread.join(timeout=30)

    assert "error" not in outcome, f"{outcome.get('error')!r}\n{function.container.logs()}"
    response = outcome["response"]
    assert response.status_code == 200, response.text
    assert outcome["at"] > signalled, "the request finished before SIGTERM: nothing was in flight"
    assert len(response.json()["result"]["pages"]) == len(pages)
    assert exit_code == 0, function.container.logs()


def test_manifest_command_is_not_the_lambda_entrypoint(image_for: Callable[[str], ImageConfig]) -> None:
    """Knative runs the HTTP server: the manifest overrides the image's Lambda runtime client."""
    for name in SERVICES:
        ksvc = services()[name]
        container = container_of(ksvc)
        image = image_for(task_of(ksvc))
        effective = (container.get("command") or image.entrypoint) + (
            container.get("args")
            if container.get("args") is not None
            else ([] if container.get("command") else image.cmd)
        )
        assert effective != image.command, f"{name} would run the Lambda runtime client"
        assert podman("image", "exists", image.tag, check=False).returncode == 0


def test_rendered_env_is_complete_for_the_app() -> None:
    """Every pack URI the overlay gives is an s3://BUCKET/models/NAME/VERSION the app can fetch."""
    for name in SERVICES:
        env = resolve_env(services()[name])
        for variable in (v for v in env if re.fullmatch(r"DOCFN_([A-Z_]+_)?MODEL_URI", v)):
            if variable in env:
                assert pack_ref(env[variable]) is not None, f"{name}: {variable}={env[variable]}"
