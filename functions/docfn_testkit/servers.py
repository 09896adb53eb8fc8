"""Real servers on loopback for tests and benchmarks: redis-server, moto's standalone S3 server, and
``docfn serve`` in its own process; the waits and probes that go with them, and the one set of test
credentials boto3 uses against them (never real AWS)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
# The bucket the tests create in their S3 servers.
TEST_BUCKET = "docfn-test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int,
    timeout: float = 20.0,
    process: subprocess.Popen | None = None,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Wait until something listens on loopback ``port``; fail early when ``process`` exits (or
    ``alive()`` says the server, e.g. a container, is gone)."""
    deadline = time.monotonic() + timeout
    checked = 0.0  # alive() may be slow (a container's: `podman inspect`): once a second at most
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        if alive is not None and time.monotonic() - checked >= 1.0:
            if not alive():
                raise RuntimeError(f"gave up waiting for port {port}: the server is gone")
            checked = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {port} after {timeout}s")


def wait_until(check: Callable[[], T], what: str, timeout: float = 60.0, every: float = 0.05) -> T:
    """Poll ``check()`` until it returns something truthy (returned); fail naming ``what`` after
    ``timeout``. Tests wait on a real condition like this, never on a guessed sleep."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(every)
    return value


def shell_session(script: str, cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    """``script`` run by bash (-euo pipefail) as a reader would paste it, servers it leaves in the
    background stopped afterwards: (exit status, stdout, stderr)."""
    # Files, not pipes: the servers left in the background would hold a pipe open after bash ends.
    out, err = cwd / "stdout.txt", cwd / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        session = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # the servers it starts in the background share its process group
        )
        try:
            session.wait(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):  # none left when the script failed early
                os.killpg(session.pid, signal.SIGTERM)
    return session.returncode, out.read_text(), err.read_text()


def scrape_metric(text: str, name: str, **labels: str) -> float | None:
    """One sample's value from a Prometheus text exposition (``/metrics``), or None if absent."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def redis_server_binary() -> str:
    """The redis-server executable (Debian's package, which scripts/test installs)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed; scripts/test installs it (apt-get install redis-server)"
        )
    return binary


class RedisServer:
    """A real redis-server on a free loopback port, optionally requiring a password."""

    def __init__(
        self,
        binary: str | None,
        workdir: Path,
        password: str | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.binary = binary or redis_server_binary()
        self.workdir = workdir
        self.password = password
        self.extra_args = extra_args or []
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        args += ["--dir", str(self.workdir)]
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra_args
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, process=self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)


class DocfnServer:
    """``docfn serve`` in its own process, exactly as a container runs it."""

    def __init__(
        self, env: dict[str, str], args: list[str] | None = None, command: list[str] | None = None
    ) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env, "PORT": str(self.port)}
        # The venv's scripts first on PATH, as in the image, so a container command like
        # ["docfn", "serve", ...] resolves to this checkout's entry point.
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.args = args or []
        self.command = command or [sys.executable, "-m", "docfn", "serve", "--host", "127.0.0.1"]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DocfnServer:
        # Output goes to files, not pipes: a pipe nobody reads fills after a few hundred log lines
        # and would block a server under load.
        # They live as long as the server (closed by stop), so no context manager here.
        self._stdout = tempfile.TemporaryFile()  # noqa: SIM115
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            [*self.command, *self.args], env=self.env, stdout=self._stdout, stderr=self._stderr
        )
        wait_for_port(self.port, timeout=60, process=self.process)
        return self

    def stop(self) -> tuple[int, str]:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        text = self.stderr_text()
        self._stdout.close()
        self._stderr.close()
        return self.process.returncode, text

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def client(self, timeout: float = 120.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)


def running_server(model_store: Path, tasks: str, **env: str) -> Iterator[DocfnServer]:
    """``docfn serve`` for a module's fixture (``yield from``): started, yielded, stopped."""
    instance = DocfnServer({"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": tasks, **env}).start()
    try:
        yield instance
    finally:
        instance.stop()


# The one set of test credentials: what boto3 signs with against the local S3 servers (never real
# AWS). AWS_TEST_ENV adds the region and keeps boto3 off the EC2 metadata service; where a test needs
# more (the Lambda environment's AWS_REGION and AWS_SESSION_TOKEN), it adds them to these.
AWS_TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
AWS_TEST_REGION = "us-east-1"
AWS_TEST_ENV = {
    **AWS_TEST_CREDENTIALS,
    "AWS_DEFAULT_REGION": AWS_TEST_REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


class S3Server:
    """moto's standalone server (S3, Secrets Manager, …) over HTTP on loopback, in its own process."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        """``env``: moto's own settings, e.g. ``INITIAL_NO_AUTH_ACTION_COUNT`` (``s3_policies``)."""
        self.port = free_port()
        self.env = env or {}
        self.process: subprocess.Popen | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **AWS_TEST_ENV, **self.env},
        )
        wait_for_port(self.port, timeout=30, process=self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reset(self) -> None:
        """Forget everything stored (every bucket, object, secret): moto's reset API, so one server
        process can stand in for a fresh one."""
        httpx.post(f"{self.endpoint_url}/moto-api/reset", timeout=30).raise_for_status()

    def client(self, service: str = "s3") -> Any:
        """A boto3 client of this server, signing with the test credentials."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=AWS_TEST_REGION,
            aws_access_key_id=AWS_TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def bucket(self, name: str) -> str:
        """The bucket ``name``, created unless it exists."""
        s3 = self.client()
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if name not in existing:
            s3.create_bucket(Bucket=name)
        return name


class SwitchableS3(S3Server):
    """moto's S3 server in its own process (``s3_switch.py``); ``down()``/``up()`` keep its data."""

    def start(self) -> SwitchableS3:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("s3_switch.py")), str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._expect("up")
        wait_for_port(self.port, process=self.process)
        return self

    def down(self) -> None:
        self._send("down")

    def up(self) -> None:
        self._send("up")
        wait_for_port(self.port, process=self.process)

    def _send(self, command: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        self._expect(command)

    def _expect(self, word: str) -> None:
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line == word, f"s3_switch said {line!r}, expected {word!r}"


def json_log_records(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The JSON objects among log lines (a line's JSON starts at its first ``{``; other lines and
    lines that do not parse are skipped), in order."""
    records = []
    for line in lines:
        start = line.find("{")
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
