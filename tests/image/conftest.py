"""Fixtures for running the built function images (issue 11, "ship what runs").

The images come from scripts/build_image (once per session and task; podman's layer cache makes
a rebuild without changes take seconds). The first build on a machine also makes the Debian base
image (a few minutes): that is why these tests get a long per-test timeout, while every wait
inside them (HTTP calls, container start, exit) has its own short bound.

Everything is skipped, with the reason, only when podman cannot run containers here at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from docfn.packs.catalog import DEFAULT_PACKS as CATALOG_DEFAULTS
from docfn_testkit.caches import exclusive
from docfn_testkit.caches import pack_store as shared_pack_store
from docfn_testkit.containers import (
    BuildFailed,
    ImageConfig,
    PodmanUnavailable,
    Redis,
    build_image,
    build_packs,
    docfn_cli,
    ensure_container_host,
    inspect_image,
    known_packs,
    pack_ref,
    publish_pack,
)
from docfn_testkit.knative_run import IN_CLUSTER, KnativeContainer, resolve_env, retarget, services, task_of
from docfn_testkit.servers import S3Server

HERE = Path(__file__).parent
# Covers a first build of the base image and the dependencies inside a test's setup; a warm run of
# the whole directory takes a few minutes.
IMAGE_TEST_TIMEOUT = 1800
# The packs the default tasks use; more are built on demand if a manifest names one.
DEFAULT_PACKS = ("ocr-ppocrv6-tiny", "layout-cdla", "table-slanet-plus")
# The VLM pack Terraform and Knative name by default: no recipe builds it (see ``require_pack``).
VLM_PACK_NAME = CATALOG_DEFAULTS["vlm"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "image: runs the built container images with podman (tests/image)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.image)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(IMAGE_TEST_TIMEOUT))


@pytest.fixture(scope="session")
def container_host() -> None:
    try:
        ensure_container_host()
    except PodmanUnavailable as exc:
        pytest.skip(f"podman cannot run containers on this machine: {exc}")


@pytest.fixture(scope="session")
def image_for(container_host: None) -> Callable[[str], ImageConfig]:
    """task -> the built image's configuration (built once per session)."""
    built: dict[str, ImageConfig] = {}

    def get(task: str) -> ImageConfig:
        if task not in built:
            try:
                built[task] = inspect_image(build_image(task))
            except BuildFailed as exc:
                pytest.fail(str(exc), pytrace=False)
        return built[task]

    return get


@pytest.fixture(scope="session")
def pack_store() -> Path:
    """A local store holding the default packs, built with `docfn models build` (kept across sessions
    and clones in the machine's cache, in a folder named by the code that makes packs)."""
    return build_packs(DEFAULT_PACKS, shared_pack_store())


@pytest.fixture(scope="session")
def require_pack(pack_store: Path) -> Callable[[str], Path]:
    """ref "NAME/VERSION" -> its directory in the store, building it if the CLI can; else skip."""
    known: set[str] = set()

    def get(ref: str) -> Path:
        name = ref.split("/")[0]
        if name == VLM_PACK_NAME:
            # MinerU2.5's weights are not reachable here: a tiny random model of its architecture,
            # exported by the same command under the default pack's name, stands in for it, so the
            # VLM images run their real loading and serving code.
            with exclusive(pack_store, ".vlm-export.lock"):
                if not (pack_store / ref).is_dir():
                    docfn_cli(
                        "models", "export-vlm", "--random-tiny", str(pack_store / ref),
                        "--name", name, "--version", ref.split("/")[1], timeout=900,
                    )  # fmt: skip
        if not (pack_store / ref).is_dir():
            if not known:
                known.update(known_packs())
            if name not in known:
                pytest.skip(f"pack {ref} cannot be built here (`docfn models build` knows {sorted(known)})")
            build_packs([name], pack_store)
        if not (pack_store / ref).is_dir():
            pytest.skip(f"`docfn models build {name}` made no version {ref}")
        return pack_store / ref

    return get


@pytest.fixture(scope="module")
def moto() -> Iterator[S3Server]:
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def publish(moto: S3Server, require_pack: Callable[[str], Path]) -> Callable[[str, str], str]:
    """(bucket, "NAME/VERSION") -> s3 URI, the pack published there once per module."""
    done: dict[tuple[str, str], str] = {}

    def put(bucket: str, ref: str) -> str:
        if (bucket, ref) not in done:
            pack = require_pack(ref)
            moto.bucket(bucket)
            done[(bucket, ref)] = publish_pack(pack.parents[1], ref, bucket, moto.endpoint_url)
        return done[(bucket, ref)]

    return put


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
    """Knative Service name -> its container started as the rendered dev overlay says
    (docfn_testkit.knative_run), stopped after the test."""
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
