"""Run the built function images with podman, exactly as shipped: helpers for tests and benchmarks.

Nothing here knows docfn's internal module paths: the Lambda entry point is whatever the image's
own ENTRYPOINT + CMD say (``podman image inspect``), and the Knative command is whatever the
rendered manifest says. Packs are built and published with the ``docfn models`` CLI.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .caches import IMAGE_TESTS, WHEELS, exclusive, pack_store
from .docgen import pdf_from_images
from .paths import DEVSET, ROOT
from .runtime_api import RuntimeApiEmulator
from .servers import (
    AWS_TEST_CREDENTIALS,
    AWS_TEST_ENV,
    RedisServer,
    free_port,
    json_log_records,
    wait_for_port,
)

BUILD_IMAGE = ROOT / "scripts" / "build_image"
CONTAINER_HOST = ROOT / "scripts" / "container_host"
# Packs and the emulator binary persist across sessions and clones here (docfn_testkit.caches).
CACHE = IMAGE_TESTS
# The release of aws-sam-cli whose wheel carries the emulator (pinned: its binary is what we test on).
AWS_SAM_CLI_VERSION = "1.170.0"
PODMAN = ["podman"] if os.geteuid() == 0 else ["sudo", "-n", "podman"]
# What Lambda's Python runtimes and RIE use when nothing else is configured.
REGION = "us-east-1"
# Lambda ignores the image's USER and runs the function as its own unprivileged user (uid:gid as
# observed in Lambda's container-image environment).
LAMBDA_USER = "993:990"


class PodmanUnavailable(RuntimeError):
    """Podman cannot run containers on this machine (not a failure of the image)."""


class BuildFailed(RuntimeError):
    pass


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(
            f"podman {' '.join(args[:3])} … failed ({done.returncode}):\n{done.stderr[-4000:]}"
        )
    return done


def ensure_container_host() -> None:
    """Install/configure podman (scripts/container_host); PodmanUnavailable if it cannot run here."""
    if shutil.which("podman") is None and shutil.which("apt-get") is None:
        raise PodmanUnavailable("podman is not installed and there is no apt-get to install it")
    done = subprocess.run([str(CONTAINER_HOST)], capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise PodmanUnavailable(f"scripts/container_host failed:\n{done.stderr[-3000:]}")
    info = subprocess.run([*PODMAN, "info"], capture_output=True, text=True, timeout=60, check=False)
    if info.returncode != 0:
        raise PodmanUnavailable(f"`podman info` fails here:\n{info.stderr[-3000:]}")


def build_image(task: str, timeout: float = 1800, *, with_packs: bool = False) -> str:
    """scripts/build_image TASK [--with-packs]: the image tag (it prints it on stdout). With packs,
    they are built into the image tests' pack store (DOCFN_IMAGE_PACK_STORE), which they share."""
    args = [str(BUILD_IMAGE), task, *(["--with-packs"] if with_packs else [])]
    env = {**os.environ, "DOCFN_IMAGE_PACK_STORE": str(pack_store())} if with_packs else None
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    if done.returncode != 0:
        raise BuildFailed(f"{' '.join(args[-2:])} failed ({done.returncode}):\n{done.stderr[-6000:]}")
    return done.stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class ImageConfig:
    tag: str
    entrypoint: list[str]
    cmd: list[str]
    user: str
    env: dict[str, str]
    workdir: str
    size: int
    labels: dict[str, str]

    @property
    def command(self) -> list[str]:
        """What the container runs with no override: ENTRYPOINT + CMD."""
        return [*self.entrypoint, *self.cmd]


def inspect_image(tag: str) -> ImageConfig:
    (data,) = json.loads(podman("image", "inspect", tag).stdout)
    config = data.get("Config") or {}
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    return ImageConfig(
        tag=tag,
        entrypoint=list(config.get("Entrypoint") or []),
        cmd=list(config.get("Cmd") or []),
        user=config.get("User") or "",
        env=env,
        workdir=config.get("WorkingDir") or "",
        size=int(data["Size"]),
        labels=dict(config.get("Labels") or data.get("Labels") or {}),
    )


def load_module(name: str, path: Path) -> Any:
    """A test helper module outside this package (tests/infra, tests/knative have no __init__)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STRIP_REPORT = "/opt/venv/share/docfn-image/stripped.tsv"


def strip_report(tag: str) -> list[tuple[str, int]]:
    """(step, bytes saved) for each strip step of the Dockerfile, as recorded inside the image."""
    report = podman("run", "--rm", "--network", "none", "--entrypoint", "cat", tag, STRIP_REPORT).stdout
    return [
        (label, int(saved)) for label, saved in (line.split("\t") for line in report.strip().splitlines()[1:])
    ]


@dataclass
class Container:
    """One ``podman run -d``; removed on stop(). Only the given environment goes in (plus the image's)."""

    image: str
    args: Sequence[str] = ()
    entrypoint: Sequence[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    network: str = "host"
    publish: Sequence[str] = ()
    read_only: bool = True
    tmpfs: Sequence[str] = ("/tmp",)
    user: str | None = None
    volumes: Sequence[str] = ()
    extra: Sequence[str] = ()
    name: str = field(default_factory=lambda: f"docfn-test-{uuid.uuid4().hex[:12]}")
    id: str | None = None

    def run_args(self) -> list[str]:
        args = ["run", "-d", "--name", self.name, "--network", self.network]
        if self.read_only:
            args.append("--read-only")
        for path in self.tmpfs:
            args += ["--tmpfs", path]
        for spec in self.publish:
            args += ["-p", spec]
        for spec in self.volumes:
            args += ["-v", spec]
        if self.user is not None:
            args += ["--user", self.user]
        if self.entrypoint is not None:
            args += ["--entrypoint", json.dumps(list(self.entrypoint))]
        for key, value in self.env.items():
            args += ["--env", f"{key}={value}"]
        return [*args, *self.extra, self.image, *self.args]

    def start(self) -> Container:
        self.id = podman(*self.run_args(), timeout=120).stdout.strip()
        return self

    def state(self) -> dict[str, Any]:
        done = podman("inspect", "--type", "container", self.name, check=False)
        if done.returncode != 0:
            return {}
        return json.loads(done.stdout)[0]["State"]

    def running(self) -> bool:
        return bool(self.state().get("Running"))

    def logs(self) -> str:
        done = podman("logs", self.name, check=False, timeout=60)
        return done.stdout + done.stderr

    def log_records(self) -> list[dict[str, Any]]:
        return json_log_records(self.logs().splitlines())

    def signal(self, name: str) -> None:
        podman("kill", "--signal", name, self.name)

    def wait(self, timeout: float) -> int:
        done = podman("wait", self.name, timeout=timeout)
        return int(done.stdout.strip().splitlines()[-1])

    def stop(self, grace: int = 2) -> None:
        """Remove the container (SIGTERM, then SIGKILL after `grace` seconds if still running)."""
        podman("rm", "-f", "-t", str(grace), self.name, check=False, timeout=60)

    def __enter__(self) -> Container:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- model packs


def docfn_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """The project's own CLI from this checkout's venv (``python -m docfn``)."""
    done = subprocess.run(
        [sys.executable, "-m", "docfn", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"docfn {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


def known_packs() -> set[str]:
    """Pack names `docfn models build` can make here: the catalog's recipes. (The VLM pack is not
    one: `docfn models export-vlm` makes it from MinerU2.5's weights, which no machine here has.)"""
    from docfn.packs.catalog import RECIPES

    return set(RECIPES)


def build_packs(names: Iterable[str], store: Path) -> Path:
    """`docfn models build NAMES --store STORE` (it reuses what the store already holds); the wheels
    come from the shared wheel cache, and one run on the machine builds into a store at a time."""
    store.mkdir(parents=True, exist_ok=True)
    wheels = store / "_wheels"
    if not wheels.exists():
        WHEELS.mkdir(parents=True, exist_ok=True)
        wheels.symlink_to(WHEELS)
    with exclusive(store):
        docfn_cli("models", "build", *sorted(set(names)), "--store", str(store), timeout=900)
    return store


def publish_pack(store: Path, ref: str, bucket: str, endpoint_url: str) -> str:
    """`docfn models publish STORE/NAME/VERSION --bucket B`; ref is "NAME/VERSION"; returns the s3 URI."""
    env = {**AWS_TEST_ENV, "AWS_DEFAULT_REGION": REGION}
    docfn_cli(
        "models", "publish", str(store / ref), "--bucket", bucket, "--endpoint-url", endpoint_url, "--force",
        env=env, timeout=300,
    )  # fmt: skip
    return f"s3://{bucket}/models/{ref}"


def pack_ref(uri: str) -> tuple[str, str] | None:
    """("BUCKET", "NAME/VERSION") of s3://BUCKET/models/NAME/VERSION, else None."""
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[len("s3://") :].partition("/")
    parts = key.strip("/").split("/")
    if len(parts) != 3 or parts[0] != "models":
        return None
    return bucket, f"{parts[1]}/{parts[2]}"


# --------------------------------------------------------------------------- local services


class Redis(RedisServer):
    """redis-server on a free loopback port, optionally with a password (requirepass)."""

    def __init__(self, workdir: Path, password: str | None = None) -> None:
        super().__init__(None, workdir, password)  # the binary: servers.redis_server_binary()


# --------------------------------------------------------------------------- Lambda


def rie_binary(cache: Path = CACHE) -> Path:
    """The real AWS Lambda Runtime Interface Emulator, from the aws-sam-cli wheel on PyPI."""
    target = cache / "rie" / AWS_SAM_CLI_VERSION / "aws-lambda-rie-x86_64"
    if target.is_file():
        return target
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob(f"aws_sam_cli-{AWS_SAM_CLI_VERSION}-*.whl"))
    if not found:
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        wanted = f"aws-sam-cli=={AWS_SAM_CLI_VERSION}"
        subprocess.run([*pip, wanted, "-d", str(wheels)], check=True, capture_output=True, timeout=600)
        found = sorted(wheels.glob(f"aws_sam_cli-{AWS_SAM_CLI_VERSION}-*.whl"))
    with zipfile.ZipFile(found[-1]) as wheel:
        data = wheel.read("samcli/local/rapid/aws-lambda-rie-x86_64")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(data)
    partial.chmod(0o755)
    partial.rename(target)
    return target


def lambda_environment(
    function_name: str, memory_mb: int = 3008, timeout_s: int = 300, region: str = REGION
) -> dict[str, str]:
    """What Lambda itself puts in a container-image function's environment (AWS's documented set)."""
    return {
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout_s),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "TZ": ":UTC",
        # The test credentials, plus the session token Lambda gives every function (a role's).
        **AWS_TEST_CREDENTIALS,
        "AWS_SESSION_TOKEN": "testing",
    }


class RieFunction:
    """The image's ENTRYPOINT + CMD behind the real RIE, invoked over RIE's HTTP API."""

    INVOKE = "/2015-03-31/functions/function/invocations"

    def __init__(self, image: ImageConfig, env: dict[str, str], rie: Path, user: str | None = None) -> None:
        self.port = free_port()
        api_port = free_port()
        self.container = Container(
            image.tag,
            entrypoint=["/usr/local/bin/aws-lambda-rie"],
            args=[
                "--runtime-interface-emulator-address",
                f"127.0.0.1:{self.port}",
                "--runtime-api-address",
                f"127.0.0.1:{api_port}",
                *image.command,
            ],
            env=env,
            volumes=[f"{rie}:/usr/local/bin/aws-lambda-rie:ro"],
            user=user,
        )

    def start(self, timeout: float = 30) -> RieFunction:
        self.container.start()
        wait_for_port(self.port, timeout=timeout, alive=self.container.running)
        return self

    def invoke(self, event: Any, timeout: float = 180) -> dict[str, Any]:
        import httpx

        response = httpx.post(f"http://127.0.0.1:{self.port}{self.INVOKE}", json=event, timeout=timeout)
        assert response.status_code == 200, f"{response.status_code} {response.text}\n{self.container.logs()}"
        return response.json()

    def stop(self) -> None:
        self.container.stop(grace=0)  # Lambda does not wait for a runtime to exit on its own


class ContainerFunction:
    """The image, unchanged (its ENTRYPOINT + CMD), polling our Runtime API emulator (runtime_api.py)
    from inside its container on the host network, with a read-only root and a tmpfs /tmp."""

    def __init__(self, image: ImageConfig, env: dict[str, str]) -> None:
        self.api = RuntimeApiEmulator(free_port())
        self.container = Container(
            image.tag, env={**env, "AWS_LAMBDA_RUNTIME_API": self.api.address}, user=image.user or None
        )

    def start(self) -> ContainerFunction:
        self.api.start()
        self.container.start()
        return self

    def invoke(self, event: Any, timeout: float = 120.0) -> Any:
        invocation = self.api.enqueue(event)
        waited = 0.0
        while not invocation.done.wait(0.25):
            waited += 0.25
            if waited >= timeout or not self.container.running():
                raise AssertionError(f"no result after {waited:.1f}s:\n{self.container.logs()}")
        return invocation

    def response(self, event: Any) -> dict[str, Any]:
        invocation = self.invoke(event)
        assert invocation.outcome == "response", invocation.payload.decode()
        return invocation.json()

    def stop(self) -> None:
        self.container.stop(grace=0)  # Lambda does not wait for a runtime to exit on its own
        self.api.stop()


# --------------------------------------------------------------------------- inputs and checks


def devset_page(page_id: str) -> bytes:
    return (DEVSET / f"{page_id}.png").read_bytes()


def words(text: str) -> set[str]:
    import re
    import unicodedata

    text = unicodedata.normalize("NFKC", text).lower()
    return {w for w in re.findall(r"[a-z]{4,}", text)}


def word_recall(found: str, page_id: str) -> float:
    """Share of the page's own words (4+ letters, from its PDF text layer) that the result contains."""
    truth = words((DEVSET / f"{page_id}.txt").read_text())
    return len(truth & words(found)) / max(1, len(truth))


def pdf_of_pages(page_ids: Sequence[str]) -> bytes:
    """A multi-page PDF of devset pages (one image per page, 150 dpi as rendered)."""
    from PIL import Image

    return pdf_from_images([Image.open(DEVSET / f"{p}.png").convert("RGB") for p in page_ids], dpi=150.0)


def server_timing(header: str) -> dict[str, float]:
    """{"fetch": 12.3, ...} from a Server-Timing header (name;dur=ms, ...)."""
    phases: dict[str, float] = {}
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur":
                phases[name.strip()] = float(value)
    return phases
