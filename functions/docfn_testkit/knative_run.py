"""Knative Services of the rendered dev overlay (knative/overlays/dev) run with podman as their pod
spec says: the tests under tests/image/ that run a function "as Knative runs it" share this.

Everything about each container comes from the rendered manifest, never copied here: the command
and args (Kubernetes semantics over the image's ENTRYPOINT/CMD), the environment (env with
configMapKeyRef/secretKeyRef and envFrom resolved against the rendered ConfigMaps and Secrets,
plus what Knative itself injects), the user and group, the read-only root, dropped capabilities,
CPU/memory limits, the emptyDir /tmp (a tmpfs here), the container port and the probe paths.

The only changes (tests/image/conftest.py, ``knative_container``): values that name in-cluster endpoints (the
S3-compatible store, Redis) are pointed at the test's moto and redis-server on the host's loopback
(reached from the container through the host network's loopback), keeping their scheme,
credentials and database; the model packs the manifest names are published by the caller to moto
under exactly the bucket/key the manifest gives.
"""

from __future__ import annotations

import base64
import re
import time
from functools import cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from .containers import Container, ImageConfig
from .kustomize import kustomize_build
from .paths import ROOT
from .servers import free_port

OVERLAY = ROOT / "knative" / "overlays" / "dev"
IN_CLUSTER = re.compile(r"\.svc(\.cluster\.local)?\b")
# How long a container may take to pass its readiness probe (the pack fetched from S3 and loaded).
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
