"""The function images as Knative Serving runs them, from the rendered dev overlay (knative/overlays/dev).

Everything about each container comes from the rendered manifest, never copied here: the command
and args (Kubernetes semantics over the image's ENTRYPOINT/CMD), the environment (env with
configMapKeyRef/secretKeyRef and envFrom resolved against the rendered ConfigMaps and Secrets,
plus what Knative itself injects), the user and group, the read-only root, dropped capabilities,
CPU/memory limits, the emptyDir /tmp (a tmpfs here), the container port and the probe paths.

The only changes: values that name in-cluster endpoints (the S3-compatible store, Redis) are pointed
at this test's moto and redis-server on the host's loopback (reached from the container through
the host network's loopback), keeping their scheme, credentials and database; and the model packs the
manifest names are published to moto under exactly the bucket/key the manifest gives.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from docfn_testkit.containers import (
    Container,
    ImageConfig,
    Redis,
    devset_page,
    pack_ref,
    pdf_of_pages,
    podman,
    word_recall,
)
from docfn_testkit.kustomize import kustomize_build
from docfn_testkit.paths import ROOT
from docfn_testkit.servers import S3Server, free_port

OVERLAY = ROOT / "knative" / "overlays" / "dev"
IN_CLUSTER = re.compile(r"\.svc(\.cluster\.local)?\b")
# A devset page each task's request uses (the table page for table; prose otherwise).
PAGES = {"table": "007", "parse": "008", "layout": "008"}
READY_WITHIN_S = 90


@cache
def rendered() -> tuple[dict[str, Any], ...]:
    """The dev overlay, rendered as tests/knative renders it (`kubectl kustomize`)."""
    return tuple(kustomize_build(OVERLAY))


def services() -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d
        for d in rendered()
        if d["kind"] == "Service" and d["apiVersion"].startswith("serving.knative.dev/")
    }


def _object(kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
    for d in rendered():
        meta = d["metadata"]
        if d["kind"] == kind and meta["name"] == name and meta.get("namespace") in (None, namespace):
            return d
    return None


def _data(kind: str, name: str, namespace: str | None, optional: bool) -> dict[str, str] | None:
    obj = _object(kind, name, namespace)
    if obj is None:
        assert optional, f"{kind}/{name} is referenced but not in the rendered overlay"
        return None
    data = dict(obj.get("data") or {})
    if kind == "Secret":
        data = {k: base64.b64decode(v).decode() for k, v in data.items()}
        data.update(obj.get("stringData") or {})
    return {k: str(v) for k, v in data.items()}


def container_of(ksvc: dict[str, Any]) -> dict[str, Any]:
    (container,) = ksvc["spec"]["template"]["spec"]["containers"]
    return container


def task_of(ksvc: dict[str, Any]) -> str:
    """The task whose image the Service runs: its image repository is docfn-<task>."""
    repository = container_of(ksvc)["image"].rsplit("/", 1)[-1].split(":")[0].split("@")[0]
    assert repository.startswith("docfn-"), container_of(ksvc)["image"]
    return repository.removeprefix("docfn-")


def container_port(container: dict[str, Any]) -> int:
    ports = container.get("ports") or [{"containerPort": 8080}]  # Knative's default user port
    return int(ports[0]["containerPort"])


def resolve_env(ksvc: dict[str, Any]) -> dict[str, str]:
    """The environment Kubernetes + Knative give the container (envFrom first, env entries win)."""
    namespace = ksvc["metadata"].get("namespace")
    container = container_of(ksvc)
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in source:
                ref = source[key]
                data = _data(kind, ref["name"], namespace, bool(ref.get("optional")))
                env.update({prefix + k: v for k, v in (data or {}).items()})
    for item in container.get("env") or []:
        name = item["name"]
        if "value" in item:
            # $(VAR) refers to a variable defined earlier; $$(VAR) escapes it.
            env[name] = re.sub(
                r"\$?\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                lambda m: m.group(0)[1:] if m.group(0).startswith("$$") else env.get(m.group(1), m.group(0)),
                str(item["value"]),
            )
            continue
        source = item.get("valueFrom") or {}
        for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            if key in source:
                ref = source[key]
                data = _data(kind, ref["name"], namespace, bool(ref.get("optional"))) or {}
                assert ref["key"] in data or ref.get("optional"), (
                    f"{name}: {kind}/{ref['name']} has no {ref['key']}"
                )
                if ref["key"] in data:
                    env[name] = data[ref["key"]]
                break
        else:
            raise NotImplementedError(f"env {name}: valueFrom {sorted(source)} is not resolved by this test")
    # What Knative injects (and forbids the Service to set).
    name = ksvc["metadata"]["name"]
    env.update(
        {
            # Knative sets PORT to the containerPort; on the host network the test gives it a free port.
            "PORT": str(container_port(container)),
            "K_SERVICE": name,
            "K_CONFIGURATION": name,
            "K_REVISION": f"{name}-00001",
        }
    )
    return env


def retarget(url: str, port: int) -> str:
    """The same URL (scheme, credentials, path) at the host's loopback (the container shares it)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def quantity_cpus(value: str) -> str:
    return str(int(value[:-1]) / 1000) if value.endswith("m") else str(float(value))


def quantity_memory(value: str) -> str:
    units = {"Ki": "k", "Mi": "m", "Gi": "g"}
    for suffix, unit in units.items():
        if value.endswith(suffix):
            return value[: -len(suffix)] + unit
    return value


class KnativeContainer:
    """A Knative Service's container run with podman as its pod spec says."""

    def __init__(self, ksvc: dict[str, Any], image: ImageConfig, env: dict[str, str]) -> None:
        spec = ksvc["spec"]["template"]["spec"]
        container = container_of(ksvc)
        self.spec = container
        self.port = free_port()
        security = container.get("securityContext") or {}
        pod_security = spec.get("securityContext") or {}
        user = security.get("runAsUser", pod_security.get("runAsUser"))
        group = security.get("runAsGroup", pod_security.get("runAsGroup"))
        extra: list[str] = []
        for capability in (security.get("capabilities") or {}).get("drop") or []:
            extra += ["--cap-drop", capability]
        for capability in (security.get("capabilities") or {}).get("add") or []:
            extra += ["--cap-add", capability]
        if security.get("allowPrivilegeEscalation") is False:
            extra += ["--security-opt", "no-new-privileges"]
        limits = (container.get("resources") or {}).get("limits") or {}
        if "cpu" in limits:
            extra += ["--cpus", quantity_cpus(str(limits["cpu"]))]
        if "memory" in limits:
            extra += ["--memory", quantity_memory(str(limits["memory"]))]
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        tmpfs = []
        for mount in container.get("volumeMounts") or []:
            volume = volumes[mount["name"]]
            if "emptyDir" not in volume:
                raise NotImplementedError(f"volume {mount['name']}: only emptyDir is run by this test")
            tmpfs.append(f"{mount['mountPath']}:rw,mode=1777")
        # Kubernetes: command replaces ENTRYPOINT (and drops CMD), args replaces CMD.
        command, args = container.get("command"), container.get("args")
        entrypoint = command if command is not None else (image.entrypoint if args is not None else None)
        if command is not None and args is None:
            args = []
        self.container = Container(
            image.tag,
            entrypoint=entrypoint,
            args=args if args is not None else [],
            # The host network: the container reaches the test's S3 and Redis on loopback, and listens
            # on a free loopback port (PORT) instead of the containerPort, which may be taken here.
            env={**env, "PORT": str(self.port)},
            network="host",
            read_only=bool(security.get("readOnlyRootFilesystem")),
            tmpfs=tmpfs,
            user=f"{user}:{group}"
            if user is not None and group is not None
            else (str(user) if user else None),
            extra=extra,
        )
        self.run_as_non_root = bool(security.get("runAsNonRoot", pod_security.get("runAsNonRoot")))
        self.image = image

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def probe_path(self, probe: str) -> str:
        http = (self.spec.get(probe) or {}).get("httpGet")
        assert http, f"{probe} is not an httpGet probe"
        return http.get("path", "/")

    def get(self, path: str, timeout: float = 5) -> httpx.Response:
        return httpx.get(self.url + path, timeout=timeout)

    def wait_for(self, probe: str, within: float) -> httpx.Response:
        path = self.probe_path(probe)
        deadline = time.monotonic() + within
        last: Any = None
        while time.monotonic() < deadline:
            if not self.container.running():
                raise AssertionError(f"container exited before {probe} passed:\n{self.container.logs()}")
            try:
                last = self.get(path, timeout=float((self.spec.get(probe) or {}).get("timeoutSeconds", 1)))
                if 200 <= last.status_code < 400:
                    return last
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.1)
        raise AssertionError(
            f"{probe} {path} not passing within {within}s (last: {last}):\n{self.container.logs()}"
        )

    def start(self) -> KnativeContainer:
        self.container.start()
        return self

    def stop(self) -> None:
        self.container.stop()


@pytest.fixture(scope="module")
def redis_for_overlay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Redis]]:
    """One redis-server per password the overlay's Redis URLs carry."""
    servers: dict[str | None, Redis] = {}

    def get(url: str) -> Redis:
        password = urlsplit(url).password
        if password not in servers:
            servers[password] = Redis(tmp_path_factory.mktemp("redis"), password=password).start()
        return servers[password]

    yield get
    for server in servers.values():
        server.stop()


@pytest.fixture
def knative_container(
    image_for: Callable[[str], ImageConfig],
    moto: S3Server,
    publish: Callable[[str, str], str],
    redis_for_overlay: Callable[[str], Redis],
) -> Iterator[Callable[[str], KnativeContainer]]:
    started: list[KnativeContainer] = []

    def start(name: str) -> KnativeContainer:
        ksvc = services()[name]
        env = resolve_env(ksvc)
        # Test-only overrides: the overlay's in-cluster S3 store and Redis become this test's
        # moto and redis-server (same scheme, credentials and database).
        if "DOCFN_S3_ENDPOINT_URL" in env:
            env["DOCFN_S3_ENDPOINT_URL"] = retarget(env["DOCFN_S3_ENDPOINT_URL"], moto.port)
        if "DOCFN_REDIS_URL" in env:
            env["DOCFN_REDIS_URL"] = retarget(
                env["DOCFN_REDIS_URL"], redis_for_overlay(env["DOCFN_REDIS_URL"]).port
            )
        unknown = {k: v for k, v in env.items() if IN_CLUSTER.search(v)}
        assert not unknown, f"in-cluster endpoints this test does not stand up: {unknown}"
        # The packs and bucket the manifest names, published exactly there.
        for value in env.values():
            ref = pack_ref(value)
            if ref is not None:
                publish(*ref)
        if "DOCFN_BUCKET" in env:
            moto.bucket(env["DOCFN_BUCKET"])
        container = KnativeContainer(ksvc, image_for(task_of(ksvc)), env)
        started.append(container)
        return container.start()

    yield start
    for container in started:
        container.stop()


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
