"""The commands in infra/terraform/README.md and knative/README.md: run here, or checked (issue 11).

Every fenced block of both READMEs is classified. Each shell block runs with bash
(`set -euo pipefail`, traced with `set -x`) from a scratch copy of the repository root:

- for real: `docfn models build` / `docfn models publish` (against a local moto S3 server standing
  in for the AWS bucket and for the in-cluster `docfn-s3`), `openssl`, `cd`, `export`, variables;
- through stand-ins that record their arguments: `terraform`, `aws`, `podman`, `kubectl`, `kind`,
  `curl` and `scripts/build_image` (no cloud, cluster or registry here; images are built and tested
  in tests/image). Each recorded call is checked against what it names: the Terraform module and
  example (outputs, variables, resource addresses, paths; `variables.tf` evaluated by terraform
  core), the rendered overlays (objects, namespaces, labels, ports, hosts, routes), the image tag
  `scripts/build_image` produces (`localhost/docfn-TASK:dev`). Where a real `kubectl` exists, the
  client-side commands (`create ... --dry-run=client`, `kustomize`) also run for real.

A traced command that is neither run for real nor a checked stand-in fails the test, so a new
README command cannot be skipped silently. Finally every deployed function is started with exactly
the environment Terraform (Lambda) or the dev overlay (Knative) gives it, as a cloud function (it
builds nothing), and must load the packs the README published and answer a request.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import hcl2
import httpx
import pytest
import yaml

from docfn.core.settings import ALL_TASKS
from docfn.tasks.registry import default_pack_settings, implemented_tasks
from docfn.tooling.vlm_checkpoint import write_tiny_checkpoint
from docfn_testkit import hcl
from docfn_testkit import knative as k8s
from docfn_testkit.caches import WHEELS
from docfn_testkit.kustomize import kustomize_build
from docfn_testkit.paths import ROOT, SAMPLE_PAGE, load_event
from docfn_testkit.servers import AWS_TEST_ENV, S3Server, free_port, wait_for_port
from docfn_testkit.terraform_env import Evaluated
from docfn_testkit.terraform_plan import web_bundle_locals

# The session runs both READMEs, each exporting a VLM pack from a checkpoint (torch, ONNX export,
# parity, int8) as they show, and every deployed function then loads its packs: minutes, not seconds.
pytestmark = pytest.mark.timeout(1500)

TF_README = hcl.TF_DIR / "README.md"
KNATIVE_README = ROOT / "knative" / "README.md"
EXAMPLE_DIR = hcl.EXAMPLES_DIR / "complete"

# The session's set-up runs both READMEs, two VLM exports included (each measures parity against
# transformers): beyond the suite's default per-test timeout on a busy two-core machine.
pytestmark = pytest.mark.timeout(1200)

# Stand-ins: these programs are replaced by a recorder (see STUB) in the README scripts.
STUBBED = ("terraform", "aws", "podman", "kubectl", "kind", "minikube", "curl", "scripts/build_image")
# Run for real. Anything else a README script executes fails test_every_command_is_run_or_checked.
REAL = ("cd", "export", "docfn", "openssl", "for", "assignment")
# The harness's own: waits for the READMEs' background commands (`... &`) before checking.
HARNESS = ("wait",)
# What the stand-ins print (the values a real account/cluster would return).
ACCOUNT = "123456789012"
TF_BUCKET = f"docfn-{ACCOUNT}-eu-west-1"  # the module's default bucket name in the example's region
DEV_BUCKET = "docfn-dev"
ENVOY_SERVICE = "service/envoy-docfn-docfn-5a6b7c8d"
API_ENDPOINT = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"
# The knative README publishes through `kubectl port-forward svc/docfn-s3 5000:5000`; in the test
# the moto server stands in for that local end of the port-forward.
PORT_FORWARD_ENDPOINT = "http://localhost:5000"

Doc = dict[str, Any]
# The implemented tasks: the only ones the READMEs deploy (issue 11), and the pack variables each
# one's function gets (the pack "<name>/<version>" each names under s3://BUCKET/models/).
IMPLEMENTED_TASKS = tuple(implemented_tasks())
TASK_PACKS = {task: default_pack_settings(task) for task in IMPLEMENTED_TASKS}


@cache
def rendered_kustomization(name: str) -> tuple[Doc, ...]:
    """A kustomization of knative/ (base, dev, prod), rendered as tests/knative renders it."""
    return tuple(kustomize_build(k8s.KUSTOMIZATIONS[name]))


# ------------------------------------------------------------------------------------ the READMEs


@dataclass
class Block:
    readme: Path
    lang: str
    text: str
    line: int

    @property
    def id(self) -> str:
        return f"{self.readme.relative_to(ROOT)}:{self.line}"


FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```[ \t]*$", re.M | re.S)


def blocks(readme: Path) -> list[Block]:
    text = readme.read_text()
    return [
        Block(readme, m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in FENCE.finditer(text)
    ]


def shell_blocks(readme: Path) -> list[Block]:
    return [b for b in blocks(readme) if b.lang in ("sh", "bash", "shell")]


def test_every_block_is_known() -> None:
    """Shell blocks are run below; the others are checked here (nothing else may appear)."""
    for readme in (TF_README, KNATIVE_README):
        for block in blocks(readme):
            if block.lang in ("sh", "bash", "shell"):
                continue
            if block.lang == "hcl":
                check_module_call_block(block)
            elif block.lang == "" and block.text.startswith("knative/\n"):
                check_tree_block(block)
            elif block.lang == "" and block.text.startswith("S3 bucket --ObjectCreated"):
                check_event_flow_block(block)
            elif block.lang == "yaml" and block.text.startswith("# knative/overlays/<yours>/"):
                check_overlay_components_block(block)
            else:
                pytest.fail(f"{block.id}: unknown {block.lang or 'plain'} block; classify it in this test")
    # apply, build and push, publish, call, and the web bundle (export-web, apply, its URL).
    assert len(shell_blocks(TF_README)) == 5
    assert len(shell_blocks(KNATIVE_README)) == 4


def check_module_call_block(block: Block) -> None:
    doc = hcl2.loads(block.text)
    ((label, body),) = doc["module"][0].items()
    assert hcl.unquote(label) == "docfn"
    source = hcl.attr(body, "source")
    assert (ROOT / source).resolve() == hcl.TF_DIR, f"{block.id}: source {source}"
    for arg in body:
        if arg not in ("source", "version") and not arg.startswith("__"):
            assert arg in hcl.module().variables, f"{block.id}: unknown module argument {arg}"
    assert hcl.attr(body, "image_tag") == hcl.attr(
        hcl.examples()["complete"].variables["image_tag"], "default"
    )


def check_overlay_components_block(block: Block) -> None:
    """The lines to add to an overlay: each component, seen from an overlay's folder, is a
    kustomize Component (tests/knative/test_warm.py renders it over dev and prod)."""
    components = yaml.safe_load(block.text)["components"]
    assert components, block.id
    for component in components:
        path = (ROOT / "knative" / "overlays" / "dev" / component).resolve()
        kustomization = yaml.safe_load((path / "kustomization.yaml").read_text())
        assert kustomization["kind"] == "Component", f"{block.id}: {component} is not a Component"


def check_tree_block(block: Block) -> None:
    """The layout sketch of knative/: every file and folder it names exists."""
    stack: list[str] = []
    named = 0
    for line in block.text.splitlines():
        m = re.match(r"^( *)(\S+)", line)
        if not m:
            continue
        depth = len(m.group(1)) // 2
        stack[depth:] = [m.group(2).rstrip("/")]
        path = ROOT.joinpath(*stack)
        assert path.exists(), f"{block.id}: {'/'.join(stack)} does not exist"
        named += 1
    assert named >= 8


def check_event_flow_block(block: Block) -> None:
    """The upload event diagram names the objects the base renders."""
    docs = rendered_kustomization("base")
    for kind, name in (
        ("IntegrationSource", "docfn-uploads"),
        ("EventTransform", "docfn-upload-router"),
        ("Broker", "docfn"),
    ):
        assert f"{kind} {name}" in block.text
        k8s.one(docs, kind, name)
    assert "Trigger docfn-<task>" in block.text and "POST /v1/events" in block.text


# ------------------------------------------------------------------------- running the blocks

STUB = """#!{python}
import json, os, sys
name = sys.argv[0].rsplit("/", 1)[-1]
tool = "scripts/build_image" if name == "build_image" else name
stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps({{"tool": tool, "args": sys.argv[1:], "cwd": os.getcwd(), "stdin": stdin,
                          "block": os.environ["STUB_BLOCK"]}}) + "\\n")
if tool == "scripts/build_image":
    # What the real script prints: the tag it built (checked against the script below).
    print("localhost/docfn-" + sys.argv[1] + ":" + os.environ.get("DOCFN_IMAGE_TAG", "dev"))
else:
    for stub_tool, words, out in json.load(open(os.environ["STUB_REPLIES"])):
        if stub_tool == tool and all(w in sys.argv[1:] for w in words):
            sys.stdout.write(out)
            break
"""


@dataclass
class Call:
    tool: str
    args: list[str]
    cwd: Path
    stdin: str
    block: str

    def __str__(self) -> str:
        return f"{self.block}: {self.tool} {shlex.join(self.args)}"


@dataclass
class Session:
    """Everything the README scripts did: stand-in calls, traced commands, outputs, the S3 server."""

    workdir: Path
    s3: S3Server
    evaluated: Evaluated
    model_packs: list[str]
    calls: list[Call] = field(default_factory=list)
    traced: dict[str, list[str]] = field(default_factory=dict)
    stdout: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    def calls_of(self, readme: Path) -> list[Call]:
        prefix = f"{readme.relative_to(ROOT)}:"
        return [c for c in self.calls if c.block.startswith(prefix)]


def published_packs(s3: S3Server, bucket: str) -> list[str]:
    """The packs ("<name>/<version>") published in a bucket: those with a manifest.json."""
    listing = s3.client().list_objects_v2(Bucket=bucket, Prefix="models/")
    keys = [o["Key"] for o in listing.get("Contents", [])]
    return sorted(k[len("models/") : -len("/manifest.json")] for k in keys if k.endswith("/manifest.json"))


def scratch_root(base: Path) -> Path:
    """The repository root as the READMEs use it, except that files they write land in scratch and
    scripts/build_image is a stand-in (the real one builds an image with podman)."""
    root = base / "repo"
    root.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in ("scripts", ".git", ".venv") and not entry.name.startswith("."):
            (root / entry.name).symlink_to(entry)
    return root


def make_stubs(base: Path) -> Path:
    bin_dir = base / "stub-bin"
    bin_dir.mkdir()
    stub = STUB.format(python=sys.executable)
    for tool in STUBBED:
        path = bin_dir / tool.rsplit("/", 1)[-1]
        path.write_text(stub)
        path.chmod(0o755)
    return bin_dir


def xtrace_commands(trace: str) -> list[str]:
    """The simple commands bash ran, from its `set -x` trace (`+ cmd args`, `++` in $(...))."""
    commands = []
    for line in trace.splitlines():
        m = re.match(r"^\++ (.*)$", line)
        if not m:
            continue
        words = m.group(1).split()
        if not words:
            continue
        first = words[0]
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", first) and len(words) == 1:
            commands.append("assignment")
        else:
            commands.append(first)
    return commands


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    base = tmp_path_factory.mktemp("readme")
    # moto's S3 server: the bucket in AWS, and docfn-s3 in the dev cluster.
    s3 = S3Server().start()
    # What `terraform apply` (the module's bucket) and the dev bootstrap Job (docfn-dev) create.
    for bucket in (TF_BUCKET, DEV_BUCKET):
        s3.client().create_bucket(Bucket=bucket)
    evaluated = Evaluated(base / "terraform-eval")
    model_packs = evaluated.apply(tasks=hcl.example_tasks())["model_packs"]
    workdir = scratch_root(base)
    stub_bin = make_stubs(base)
    (workdir / "scripts").mkdir()
    shutil.copy(stub_bin / "build_image", workdir / "scripts" / "build_image")
    # The stand-ins' answers: (tool, words that must all appear in the arguments, stdout).
    replies = [
        ("aws", ["sts", "get-caller-identity"], f"{ACCOUNT}\n"),
        ("aws", ["ecr", "get-login-password"], "stand-in-ecr-password\n"),
        ("terraform", ["output", "-raw", "bucket_name"], TF_BUCKET),
        ("terraform", ["output", "-json", "model_packs"], json.dumps(model_packs) + "\n"),
        ("terraform", ["output", "-raw", "api_endpoint"], API_ENDPOINT),
        ("kubectl", ["get", "svc", "-o", "name"], ENVOY_SERVICE + "\n"),
    ]
    (base / "replies.json").write_text(json.dumps(replies))
    result = Session(workdir=workdir, s3=s3, evaluated=evaluated, model_packs=model_packs)
    try:
        for readme, extra_env in (
            # The Terraform README publishes with the account's credentials to real S3.
            (TF_README, {**AWS_TEST_ENV, "DOCFN_S3_ENDPOINT_URL": s3.endpoint_url}),
            # The knative README sets its own (dev) credentials and endpoint.
            (KNATIVE_README, {}),
        ):
            home = base / f"home-{readme.parent.name}"
            store = home / ".cache" / "docfn" / "models"
            store.mkdir(parents=True)
            # The wheels the packs are built from, downloaded once per machine.
            WHEELS.mkdir(parents=True, exist_ok=True)
            (store / "_wheels").symlink_to(WHEELS)
            # MinerU2.5's weights stand where the READMEs have them: a tiny random checkpoint of the
            # same architecture (no model hub here), which `docfn models export-vlm` really exports.
            write_tiny_checkpoint(home / "MinerU2.5-2509-1.2B")
            for block in shell_blocks(readme):
                text = block.text.replace(PORT_FORWARD_ENDPOINT, s3.endpoint_url)
                trace = base / f"trace-{block.line}-{readme.parent.name}"
                env = {
                    # This machine's settings (package index, CA bundles), but no AWS or docfn ones.
                    **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DOCFN_", "K_"))},
                    "PATH": os.pathsep.join(
                        [str(stub_bin), str(Path(sys.executable).parent), "/usr/bin", "/bin"]
                    ),
                    "HOME": str(home),
                    "TMPDIR": str(base),
                    "STUB_LOG": str(base / "calls.jsonl"),
                    "STUB_REPLIES": str(base / "replies.json"),
                    "STUB_BLOCK": block.id,
                    **extra_env,
                }
                script = (
                    f"exec {{BASH_XTRACEFD}}>{shlex.quote(str(trace))}\nset -euxo pipefail\n{text}\nwait\n"
                )
                done = subprocess.run(
                    ["bash", "-c", script],
                    cwd=workdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
                assert done.returncode == 0, (
                    f"{block.id} failed ({done.returncode}):\n{text}\n--- stdout\n{done.stdout}\n"
                    f"--- stderr\n{done.stderr[-4000:]}"
                )
                result.traced[block.id] = xtrace_commands(trace.read_text())
                result.stdout[block.id] = done.stdout
                result.texts[block.id] = block.text
        log = base / "calls.jsonl"
        for line in log.read_text().splitlines() if log.exists() else []:
            raw = json.loads(line)
            result.calls.append(Call(raw["tool"], raw["args"], Path(raw["cwd"]), raw["stdin"], raw["block"]))
        yield result
    finally:
        s3.stop()


# --------------------------------------------------------------------- checking the stand-ins


def options(args: list[str], with_value: set[str]) -> tuple[list[str], dict[str, str]]:
    """Positional arguments and --flag values (`-n x`, `--n=x`) of a command line."""
    positional: list[str] = []
    flags: dict[str, str] = {}
    items = iter(args)
    for arg in items:
        if arg.startswith("-") and "=" in arg:
            name, value = arg.split("=", 1)
            flags[name] = value
        elif arg in with_value:
            flags[arg] = next(items)
        elif arg.startswith("-"):
            flags[arg] = ""
        else:
            positional.append(arg)
    return positional, flags


KUBECTL_VALUE_FLAGS = {
    "-n",
    "--namespace",
    "--type",
    "-p",
    "-l",
    "-o",
    "--for",
    "--timeout",
    "--cert",
    "--key",
    "-k",
}


def real_kubectl() -> str | None:
    return shutil.which("kubectl")


def kubectl_dry_run(call: Call, extra: list[str], session: Session) -> Doc | None:
    """Run a client-side kubectl command for real (no cluster needed) when kubectl is installed."""
    binary = real_kubectl()
    if binary is None:
        return None
    done = subprocess.run(
        [binary, *call.args, "--dry-run=client", "-o", "json", *extra],
        cwd=call.cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ["PATH"], "HOME": str(session.workdir.parent), "KUBECONFIG": os.devnull},
    )
    assert done.returncode == 0, f"{call}: {done.stderr}"
    return json.loads(done.stdout)


def dev_docs() -> tuple[Doc, ...]:
    return rendered_kustomization("dev")


def dev_host() -> str:
    return k8s.public_host(dev_docs())


def example_default(name: str) -> Any:
    return hcl.attr(hcl.examples()["complete"].variables[name], "default")


def check_terraform(call: Call, session: Session) -> str:
    positional, flags = options(call.args, set())
    directory = call.cwd
    if "-chdir" in flags:
        directory = (call.cwd / flags["-chdir"]).resolve()
    assert directory == EXAMPLE_DIR.resolve(), f"{call}: run in {directory}, not examples/complete"
    config = hcl.examples()["complete"]
    command = positional[0]
    if command == "init":
        # Cannot run here: it downloads the providers that versions.tf pins.
        assert config.terraform, "the example has no terraform block"
        return "stand-in: providers cannot be downloaded here; versions.tf pins them (test_terraform.py)"
    if command == "apply" and "-target" in flags:
        target = flags["-target"]
        m = re.fullmatch(r"module\.([a-z_]+)\.([a-z0-9_]+)\.([a-z0-9_]+)", target)
        assert m, f"{call}: {target}"
        assert m.group(1) in config.modules, f"{call}: no module {m.group(1)} in the example"
        hcl.module().resource(m.group(2), m.group(3))
        assert m.group(2) == "aws_ecr_repository", "step 1 creates the repositories the images go to"
        return f"stand-in: {target} exists in the module"
    if command == "apply":
        given = dict(call.args[i + 1].split("=", 1) for i, arg in enumerate(call.args) if arg == "-var")
        checked = []
        for name, value in given.items():
            assert name in config.variables, f"{call}: the example has no variable {name}"
            if name == "image_tag":
                assert value == example_default("image_tag")
                session.evaluated.apply(image_tag=value)
                checked.append(f"var {name}={value} declared and valid (evaluated)")
            elif name == "web_bundle_dir":
                # The folder `docfn export-web` wrote, read by the web bundle's own locals.
                folder = (call.cwd / value).resolve()
                scratch = session.workdir.parent / "web-bundle-eval"
                shutil.rmtree(scratch, ignore_errors=True)
                values = web_bundle_locals(folder, scratch)
                assert values["files"] and "index.html" in values["files"], f"{call}: {folder} is empty"
                unmapped = [f for f, ext in values["files"].items() if ext not in values["content_types"]]
                assert not unmapped, f"{call}: no Content-Type for {unmapped}"
                checked.append(f"var {name}: {len(values['files'])} exported files, each with a type")
            else:
                raise AssertionError(f"{call}: no check for -var {name}")
        return "stand-in: " + "; ".join(checked)
    if command == "output":
        (output_name,) = positional[1:]
        assert output_name in config.outputs, f"{call}: the example has no output {output_name}"
        module_output = re.search(r"module\.docfn\.([a-z_]+)", json.dumps(config.outputs[output_name]))
        assert module_output and module_output.group(1) in hcl.module().outputs
        if output_name == "model_packs":
            # The README shows the value; it must be what the module evaluates to.
            shown = re.search(r"output -json model_packs\s+#\s*(\[.*\])", session.texts[call.block])
            assert shown, f"{call.block}: the README shows no value for model_packs"
            assert json.loads(shown.group(1)) == session.model_packs
        return f"stand-in: output {output_name} exists"
    raise AssertionError(f"{call}: unexpected terraform command")


def check_aws(call: Call, session: Session) -> str:
    positional, flags = options(call.args, {"--query", "--output", "--region"})
    if positional == ["sts", "get-caller-identity"]:
        assert flags == {"--query": "Account", "--output": "text"}
        return "stand-in: prints the account id"
    if positional == ["ecr", "get-login-password"]:
        assert flags["--region"] == example_default("region"), "the region the example deploys to"
        return "stand-in: prints a registry password"
    raise AssertionError(f"{call}: unexpected aws command")


def ecr_registry(account: str, region: str) -> str:
    return f"{account}.dkr.ecr.{region}.amazonaws.com"


def check_podman(call: Call, session: Session) -> str:
    positional, flags = options(call.args, {"--username", "-o"})
    command = positional[0]
    if command == "login":
        assert flags == {"--username": "AWS", "--password-stdin": ""}
        assert positional[1] == ecr_registry(ACCOUNT, example_default("region"))
        assert call.stdin.strip() == "stand-in-ecr-password", "the password is piped in"
        return "stand-in: registry login"
    if command == "push":
        source, destination = positional[1:]
        task = re.fullmatch(r"localhost/docfn-([a-z]+):dev", source).group(1)
        assert source == build_image_tag(task)
        repository, tag = destination.rsplit(":", 1)
        # <registry>/<name>-<task>, the module's ECR repository (ecr.tf), at var.image_tag.
        assert (
            repository
            == f"{ecr_registry(ACCOUNT, example_default('region'))}/{example_default('name')}-{task}"
        )
        assert (
            hcl.attr(hcl.module().resource("aws_ecr_repository", "this"), "name") == "${var.name}-${each.key}"
        )
        assert tag == example_default("image_tag")
        # What the function will run: the module accepts it as a pinned image too (evaluated).
        session.evaluated.apply(image_uris={task: destination})
        return f"stand-in: pushes {source} to the {task} repository"
    if command == "tag":
        source, destination = positional[1:]
        task = re.fullmatch(r"localhost/docfn-([a-z]+):dev", source).group(1)
        assert source == build_image_tag(task)
        image = k8s.container_of(k8s.ksvcs(dev_docs())[f"docfn-{task}"])["image"]
        assert destination == image, f"the dev overlay runs {image}"
        return f"stand-in: tags {source} as the dev overlay's image"
    if command == "save":
        (image,) = positional[1:]
        assert flags["-o"].endswith(".tar") and image.startswith("dev.local/")
        return "stand-in: saves the image as an archive for kind/minikube"
    raise AssertionError(f"{call}: unexpected podman command")


def build_image_tag(task: str) -> str:
    """The tag scripts/build_image builds (read from the script, not assumed)."""
    script = (ROOT / "scripts" / "build_image").read_text()
    assert re.search(r'^TAG="localhost/docfn-\$TASK:\$\{DOCFN_IMAGE_TAG:-dev\}"$', script, re.M), (
        "scripts/build_image no longer tags localhost/docfn-TASK:dev; update the READMEs"
    )
    return f"localhost/docfn-{task}:dev"


def check_build_image(call: Call, session: Session) -> str:
    (task,) = call.args
    assert task in IMPLEMENTED_TASKS, f"{call}: {task} is not deployed"
    script = ROOT / "scripts" / "build_image"
    assert os.access(script, os.X_OK)
    # The real script's own argument check accepts the task: without one it only prints its usage,
    # with the tasks it builds (read from the task registry), before touching podman. (Building is
    # tests/image's.)
    usage = subprocess.run([str(script)], capture_output=True, text=True, timeout=30, check=False)
    assert usage.returncode == 2, usage.stderr
    tasks = re.search(r"\(TASK: ([a-z, ]+)\)", usage.stderr).group(1).split(", ")  # type: ignore[union-attr]
    assert task in tasks and sorted(tasks) == sorted(IMPLEMENTED_TASKS), usage.stderr
    build_image_tag(task)
    return f"stand-in: builds localhost/docfn-{task}:dev"


def check_kind(call: Call, session: Session) -> str:
    positional, flags = options(call.args, {"--name"})
    assert flags["--name"] == "docfn"
    if positional == ["create", "cluster"]:
        return "stand-in: a kind cluster"
    if positional[:2] == ["load", "image-archive"]:
        archive = positional[2]
        saves = [c for c in session.calls if c.tool == "podman" and c.args[:1] == ["save"]]
        assert any(options(c.args, {"-o"})[1]["-o"] == archive for c in saves), (
            f"{call}: {archive} never saved"
        )
        return "stand-in: loads a saved image"
    raise AssertionError(f"{call}: unexpected kind command")


def check_kubectl(call: Call, session: Session) -> str:
    positional, flags = options(call.args, KUBECTL_VALUE_FLAGS)
    command = positional[0]
    namespace = flags.get("-n") or flags.get("--namespace")
    docs = dev_docs()
    if command == "patch":
        assert positional[1] == "configmap/config-network" and namespace == "knative-serving"
        assert flags["--type"] == "merge"
        patch = json.loads(flags["-p"])
        assert patch == {"data": {"ingress-class": "gateway-api.ingress.networking.knative.dev"}}
        return "stand-in: selects net-gateway-api (the JSON merge patch parses)"
    if command == "create" and positional[1] == "namespace":
        assert positional[2] == k8s.NAMESPACE
        made = kubectl_dry_run(call, [], session)
        assert made is None or made["metadata"]["name"] == k8s.NAMESPACE
        return "checked, and run with --dry-run=client" if made else "checked"
    if command == "create" and positional[1:3] == ["secret", "tls"]:
        name = positional[3]
        gateway = k8s.one(docs, "Gateway", "docfn")
        (https,) = [li for li in gateway["spec"]["listeners"] if li["protocol"] == "HTTPS"]
        assert https["tls"]["certificateRefs"] == [{"kind": "Secret", "name": name}]
        assert namespace == gateway["metadata"]["namespace"]
        cert = call.cwd / flags["--cert"]
        san = subprocess.run(
            ["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"DNS:{https['hostname']}" in san, f"the certificate is not for {https['hostname']}"
        made = kubectl_dry_run(call, [], session)  # kubectl also checks that the key matches the certificate
        assert made is None or set(made["data"]) == {"tls.crt", "tls.key"}
        return "checked (certificate for the dev host), and run with --dry-run=client" if made else "checked"
    if command == "apply":
        overlay = (call.cwd / flags["-k"]).resolve()
        name = overlay.name
        assert overlay == (ROOT / "knative" / "overlays" / name).resolve() and name in ("dev", "prod")
        rendered = kustomize_build(overlay)  # what `kubectl apply -k` applies
        assert len(rendered) == len(rendered_kustomization(name))
        return "stand-in for the apply; the overlay renders (kubectl kustomize) and tests/knative checks it"
    if command == "wait":
        kind, name = positional[1].split("/")
        assert kind == "job" and namespace == k8s.NAMESPACE
        k8s.one(docs, "Job", name)
        assert flags["--for"] == "condition=Complete"
        return f"stand-in: Job {name} exists in the dev overlay"
    if command == "port-forward":
        target, ports = positional[1:]
        local, remote = ports.split(":")
        if target.startswith("svc/"):
            service = k8s.one(docs, "Service", target[4:], api="v1")
            assert namespace == service["metadata"]["namespace"]
            assert int(remote) in [p["port"] for p in service["spec"]["ports"]]
            assert f"http://localhost:{local}" == PORT_FORWARD_ENDPOINT  # what the publish commands use
            return f"stand-in: {target} exposes {remote}; the README's publish commands use localhost:{local}"
        assert target == ENVOY_SERVICE and namespace == "envoy-gateway-system"
        gateway = k8s.one(docs, "Gateway", "docfn")
        assert int(remote) in [li["port"] for li in gateway["spec"]["listeners"] if li["protocol"] == "HTTPS"]
        curls = [c for c in session.calls_of(KNATIVE_README) if c.tool == "curl"]
        assert curls and all(urlsplit(c.args[-1]).port == int(local) for c in curls)
        return "stand-in: the Envoy Service of Gateway docfn, HTTPS port"
    if command == "get" and positional[1] == "svc":
        assert namespace == "envoy-gateway-system"  # Envoy Gateway's controller namespace mode
        gateway = k8s.one(docs, "Gateway", "docfn")
        selector = dict(item.split("=") for item in flags["-l"].split(","))
        assert selector == {
            "gateway.envoyproxy.io/owning-gateway-namespace": gateway["metadata"]["namespace"],
            "gateway.envoyproxy.io/owning-gateway-name": gateway["metadata"]["name"],
        }
        assert flags["-o"] == "name"
        return "stand-in: finds the Envoy Service by the labels Envoy Gateway sets"
    if command == "get" and positional[1] == "ksvc":
        assert namespace == k8s.NAMESPACE and k8s.ksvcs(docs)
        return "stand-in: lists the Knative Services"
    if command == "delete" and positional[1] == "pod":
        assert namespace == k8s.NAMESPACE
        selector = dict([flags["-l"].split("=")])
        for svc in k8s.ksvcs(docs).values():
            assert selector.items() <= svc["spec"]["template"]["metadata"]["labels"].items()
        for owner, _ in k8s.pod_specs(docs):
            if owner not in k8s.ksvcs(docs):
                labels = next(
                    d["spec"]["template"].get("metadata", {}).get("labels", {})
                    for d in docs
                    if d["metadata"]["name"] == owner and d["kind"] in ("Deployment", "Job")
                )
                assert not selector.items() <= labels.items(), f"{call} would also restart {owner}"
        return "stand-in: the selector matches every function's pods and nothing else"
    raise AssertionError(f"{call}: unexpected kubectl command")


def check_curl(call: Call, session: Session) -> str:
    if "--aws-sigv4" in call.args:
        return check_signed_curl(call, session)
    positional, flags = options(call.args, {"--data-binary", "-H"})
    assert "-k" in flags  # the dev certificate is self-signed
    body = flags["--data-binary"]
    assert body.startswith("@") and (call.cwd / body[1:]).is_file(), f"{call}: no file {body[1:]}"
    assert flags["-H"].lower() == "content-type: image/png"
    (url,) = positional
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.hostname == dev_host()
    hop = k8s.route(dev_docs(), parts.hostname, parts.path)
    assert hop is not None, f"{call}: nothing routes {parts.path}"
    task = parts.path.strip("/").split("/")[-1]
    assert hop[:2] == (k8s.ksvc_host(task), f"/v1/{task}")
    return f"stand-in: {parts.path} on the dev host routes to docfn-{task}"


def check_signed_curl(call: Call, session: Session) -> str:
    """A SigV4-signed request to the HTTP API (Terraform README, "Call it")."""
    positional, flags = options(call.args, {"--aws-sigv4", "--user", "--data-binary", "-H"})
    provider, service_scope = flags["--aws-sigv4"].split(":", 2)[:2], flags["--aws-sigv4"].split(":")[2:]
    assert provider == ["aws", "amz"] and service_scope == [example_default("region"), "execute-api"]
    assert flags["--user"] == "testing:testing", "the caller's access key and secret"
    # Without temporary credentials no session token header is sent (it would break the signature).
    assert "x-amz-security-token" not in " ".join(call.args)
    body = flags["--data-binary"]
    assert body.startswith("@") and (call.cwd / body[1:]).is_file(), f"{call}: no file {body[1:]}"
    (url,) = positional
    assert url == f"{API_ENDPOINT}/v1/ocr"
    assert "POST /v1/${task}" in hcl.module().locals["api_routes"] and "ocr" in IMPLEMENTED_TASKS
    assert hcl.examples()["complete"].outputs["api_endpoint"]
    return "stand-in: POST /v1/ocr on the HTTP API, signed for execute-api in the example's region"


CHECKERS: dict[str, Callable[[Call, Session], str]] = {
    "terraform": check_terraform,
    "aws": check_aws,
    "podman": check_podman,
    "scripts/build_image": check_build_image,
    "kind": check_kind,
    "kubectl": check_kubectl,
    "curl": check_curl,
}


def test_every_command_is_run_or_checked(session: Session) -> None:
    """Each traced command is real (allowed list) or a stand-in whose every call is checked."""
    for block, commands in session.traced.items():
        assert commands, f"{block}: nothing ran"
        for command in commands:
            assert command in REAL or command in STUBBED or command in HARNESS, (
                f"{block}: `{command}` is neither run for real nor a checked stand-in: classify it here"
            )
    report = [
        f"{block}: ran for real: {', '.join(sorted(set(commands) & set(REAL)))}"
        for block, commands in session.traced.items()
    ]
    for call in session.calls:
        report.append(f"{call}\n    -> {CHECKERS[call.tool](call, session)}")
    print("\n".join(report))  # the classification, with -s
    stubbed_ran = sum(c in STUBBED for cs in session.traced.values() for c in cs)
    assert stubbed_ran == len(session.calls), "a stand-in ran without recording its call"


def test_readmes_deploy_only_the_implemented_tasks(session: Session) -> None:
    for readme in (TF_README, KNATIVE_README):
        loops = [
            shlex.split(m.group(1))
            for block in shell_blocks(readme)
            for m in re.finditer(r"^for \w+ in ([^;]+); do", block.text, re.M)
        ]
        assert loops, readme
        for words in loops:
            assert words == list(IMPLEMENTED_TASKS), f"{readme}: loops over {words}"
        built = [c.args[0] for c in session.calls_of(readme) if c.tool == "scripts/build_image"]
        assert built == list(IMPLEMENTED_TASKS)
        text = readme.read_text()
        for task in (t for t in ALL_TASKS if t not in IMPLEMENTED_TASKS):
            for advert in (f"docfn-{task}", f"/v1/{task}", f"/{task}`"):
                assert advert not in text, f"{readme} advertises {advert}"
    assert "/v1/chat/completions" not in KNATIVE_README.read_text()
    assert "/v1/chat/completions" not in TF_README.read_text()


def test_terraform_readme_publishes_what_the_functions_read(session: Session) -> None:
    assert session.model_packs == sorted({p for packs in TASK_PACKS.values() for p in packs.values()})
    assert published_packs(session.s3, TF_BUCKET) == session.model_packs
    printed = "".join(v for k, v in session.stdout.items() if k.startswith("infra/"))
    for pack in session.model_packs:
        assert f"published s3://{TF_BUCKET}/models/{pack}" in printed


def test_knative_readme_publishes_what_the_functions_read(session: Session) -> None:
    docs = dev_docs()
    read = set()
    for svc in k8s.ksvcs(docs).values():
        env = k8s.effective_env(docs, k8s.container_of(svc))
        for variable in (v for v in env if re.fullmatch(r"DOCFN_([A-Z_]+_)?MODEL_URI", v)):
            if variable in env:
                uri = urlsplit(env[variable])
                assert (uri.scheme, uri.hostname) == ("s3", DEV_BUCKET)
                read.add(uri.path.removeprefix("/models/"))
    assert published_packs(session.s3, DEV_BUCKET) == sorted(read) == session.model_packs


# ------------------------------------------------------- the deployed functions load their packs


def lambda_environment(task: str, session: Session) -> dict[str, str]:
    """What the module sets on the <task> function (main.tf function_environment, packs.tf
    evaluated), minus the cache (DOCFN_REDIS_*: no ElastiCache here, the in-process cache
    stands in) and tracing (no X-Ray daemon), plus what Lambda itself sets (the function name,
    the region, the execution role's credentials: test ones). The moto server stands in for S3
    (DOCFN_S3_ENDPOINT_URL, which the module leaves unset: the real S3 endpoint)."""
    packs = TASK_PACKS[task]
    env = {
        "DOCFN_TASKS": task,
        "DOCFN_BUCKET": TF_BUCKET,
        "DOCFN_RESULT_TTL_SECONDS": "86400",
        "DOCFN_LOG_LEVEL": "INFO",
        **{variable: f"s3://{TF_BUCKET}/models/{pack}" for variable, pack in packs.items()},
        "AWS_LAMBDA_FUNCTION_NAME": f"docfn-{task}",
        **AWS_TEST_ENV,
        "AWS_REGION": "us-east-1",
        "DOCFN_S3_ENDPOINT_URL": session.s3.endpoint_url,
    }
    environment = hcl.module().locals["function_environment"]
    for key in ("DOCFN_TASKS", "DOCFN_BUCKET", "DOCFN_RESULT_TTL_SECONDS", "DOCFN_LOG_LEVEL"):
        assert key in environment
    return env


def knative_environment(task: str, session: Session) -> dict[str, str]:
    """The dev overlay's docfn-<task> container environment, exactly (ConfigMaps, Secret, env),
    except the in-cluster addresses: docfn-s3 -> the moto server, and no Redis (the in-process
    cache stands in for docfn-redis). Plus what Knative sets (K_SERVICE, PORT)."""
    docs = dev_docs()
    container = k8s.container_of(k8s.ksvcs(docs)[f"docfn-{task}"])
    secret = k8s.one(docs, "Secret", "docfn-secrets")["stringData"]
    env = {k: (secret[k] if v is None else v) for k, v in k8s.effective_env(docs, container).items()}
    assert urlsplit(env["DOCFN_S3_ENDPOINT_URL"]).hostname == "docfn-s3.docfn.svc.cluster.local"
    env["DOCFN_S3_ENDPOINT_URL"] = session.s3.endpoint_url
    env.pop("DOCFN_REDIS_URL")
    env["K_SERVICE"] = f"docfn-{task}"
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    return env


def isolated(env: dict[str, str], base: Path) -> dict[str, str]:
    """A process environment with nothing from this machine's caches: an empty model store and
    home, and no package index (so nothing could be built from a wheel even by mistake)."""
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(base / "home"),
        "DOCFN_MODEL_STORE": str(base / "tmp" / "docfn" / "models"),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": "",
        "AWS_EC2_METADATA_DISABLED": "true",
        **env,
    }


def invoke_lambda(env: dict[str, str], task: str, base: Path) -> dict[str, Any]:
    """The image's Lambda handler (functions/Dockerfile CMD) on a function URL event, in a fresh process."""
    cmd = re.findall(r"^CMD\s+(\[.*\])\s*$", (ROOT / "functions" / "Dockerfile").read_text(), re.M)[-1]
    (handler,) = json.loads(cmd)
    event = load_event("lambda-function-url.json")
    body = SAMPLE_PAGE.read_bytes()
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/v1/{task}"
    event["requestContext"]["http"]["method"] = "POST"
    event["headers"].pop("accept-encoding", None)
    event["headers"]["content-type"] = "image/png"
    event["body"] = base64.b64encode(body).decode()
    event["isBase64Encoded"] = True
    (base / "event.json").write_text(json.dumps(event))
    program = f"""
import importlib, json, sys, types
module, _, name = {handler!r}.rpartition(".")
handler = getattr(importlib.import_module(module), name)
context = types.SimpleNamespace(
    aws_request_id="req-1", function_name="docfn-{task}", function_version="$LATEST",
    invoked_function_arn="arn:aws:lambda:us-east-1:{ACCOUNT}:function:docfn-{task}",
    memory_limit_in_mb=3008, log_group_name="/aws/lambda/docfn-{task}", log_stream_name="stream",
    get_remaining_time_in_millis=lambda: 300000)
print("RESULT " + json.dumps(handler(json.load(open(sys.argv[1])), context)))
"""
    done = subprocess.run(
        [sys.executable, "-c", program, str(base / "event.json")],
        env=isolated(env, base),
        cwd=base,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and results, f"handler failed:\n{done.stderr[-4000:]}"
    return json.loads(results[-1][len("RESULT ") :])


def lambda_body(response: dict[str, Any]) -> Any:
    body = response["body"]
    return json.loads(base64.b64decode(body) if response.get("isBase64Encoded") else body)


def serve_knative(env: dict[str, str], task: str, base: Path) -> tuple[int, dict[str, Any]]:
    """The container's own command with the container's environment; the first request once Ready."""
    container = k8s.container_of(k8s.ksvcs(dev_docs())[f"docfn-{task}"])
    port = free_port()
    process = subprocess.Popen(
        container["command"],
        env=isolated({**env, "PORT": str(port)}, base),
        cwd=base,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, timeout=60, process=process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=240) as client:
            deadline = time.monotonic() + 240
            while True:  # DOCFN_EAGER_LOAD=1: Ready only once the packs are loaded
                ready = client.get(container["readinessProbe"]["httpGet"]["path"])
                if ready.status_code == 200 or time.monotonic() > deadline or process.poll() is not None:
                    break
                time.sleep(0.5)
            assert ready.status_code == 200, f"never Ready: {ready.text}"
            answer = client.post(
                f"/v1/{task}", content=SAMPLE_PAGE.read_bytes(), headers={"content-type": "image/png"}
            )
            return answer.status_code, answer.json()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.parametrize("task", IMPLEMENTED_TASKS)
@pytest.mark.parametrize("cloud", ["lambda", "knative-dev"])
def test_deployed_function_loads_its_packs_and_answers(
    cloud: str, task: str, session: Session, tmp_path: Path
) -> None:
    if cloud == "lambda":
        env = lambda_environment(task, session)
        response = invoke_lambda(env, task, tmp_path)
        status, body = response["statusCode"], lambda_body(response)
    else:
        env = knative_environment(task, session)
        status, body = serve_knative(env, task, tmp_path)
    assert status == 200, body
    # Both load eagerly (DOCFN_EAGER_LOAD=1): Lambda from its init, overlapping the first request,
    # Knative before Ready, so that there the first request (the pod's cold one) waited for nothing.
    assert body["cold"] is True
    if cloud != "lambda":
        assert body["timings_ms"]["load_wait"] == 0
    # It fetched exactly the packs it was given (nothing built: no index, empty store).
    store = Path(isolated(env, tmp_path)["DOCFN_MODEL_STORE"])
    fetched = sorted(str(p.parent.relative_to(store)) for p in store.glob("*/*/manifest.json"))
    assert fetched == sorted(set(TASK_PACKS[task].values())), fetched


def test_parse_without_its_ocr_pack_fails_at_once_naming_the_variable(
    session: Session, tmp_path: Path
) -> None:
    """The control for the test above: issue 11's environment (no OCR pack for parse) cannot work
    in the cloud, where nothing is built, and the answer says which variable to set."""
    env = lambda_environment("parse", session)
    del env["DOCFN_OCR_MODEL_URI"]
    response = invoke_lambda(env, "parse", tmp_path)
    body = lambda_body(response)
    # SPEC: a task whose model pack is not configured answers 503 saying how to publish one.
    assert response["statusCode"] == 503, body
    assert body["error"]["code"] == "model_pack_not_configured"
    assert "DOCFN_OCR_MODEL_URI=s3://" in body["error"]["message"]
