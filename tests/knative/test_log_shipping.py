"""The optional log-shipping recipe for Knative (knative/logging: Fluent Bit to Elasticsearch /
OpenSearch): its manifests validate strictly against the Kubernetes schemas, and its pipeline,
simulated step by step as Fluent Bit runs it, turns the app's real request log line into a document
with request_id, input_sha256, task, duration_ms and status, and drops every other line."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from docfn_testkit.kustomize import kustomize_build
from docfn_testkit.paths import ROOT, SAMPLE_PAGE
from docfn_testkit.servers import DocfnServer

LOGGING = ROOT / "knative" / "logging"
K8S_VERSIONS = ("1.33.0", kubernetes_validate.latest_version())
SHIPPED = {"request_id", "input_sha256", "task", "duration_ms", "status"}
# Fluent Bit's built-in CRI parser (container runtime log lines: time, stream, partial flag, log).
CRI = re.compile(r"^(?P<time>[^ ]+) (?P<stream>stdout|stderr) (?P<_p>[^ ]*) (?P<log>.*)$")


def _docs() -> list[dict[str, Any]]:
    return kustomize_build(LOGGING)


def _pipeline() -> dict[str, Any]:
    [config_map] = [d for d in _docs() if d["kind"] == "ConfigMap"]
    return yaml.safe_load(config_map["data"]["fluent-bit.yaml"])


def _function_container() -> dict[str, Any]:
    service = yaml.safe_load((ROOT / "knative" / "base" / "services" / "docfn-ocr.yaml").read_text())
    return service["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_against_kubernetes(version: str) -> None:
    docs = _docs()
    assert {d["kind"] for d in docs} == {"ServiceAccount", "ConfigMap", "DaemonSet"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_daemonset_runs_this_configuration() -> None:
    [daemonset] = [d for d in _docs() if d["kind"] == "DaemonSet"]
    pod = daemonset["spec"]["template"]["spec"]
    [container] = pod["containers"]
    image, _, tag = container["image"].rpartition(":")
    assert image.endswith("fluent/fluent-bit") and re.fullmatch(r"\d+\.\d+\.\d+", tag)  # pinned
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert container["args"] == [f"--config={mounts['config']}/fluent-bit.yaml"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "docfn-fluent-bit"
    assert volumes["varlog"]["hostPath"]["path"] == "/var/log" == mounts["varlog"]
    [tail] = _pipeline()["pipeline"]["inputs"]
    assert Path(tail["db"]).parent.as_posix() == mounts["state"]
    env = {e["name"] for e in container["env"]}
    output = _pipeline()["pipeline"]["outputs"][0]
    assert output["name"] == "opensearch" and output["index"] == "docfn-requests"
    assert {m[2:-1] for m in re.findall(r"\$\{\w+\}", json.dumps(output))} <= env


def test_the_tail_path_reads_the_function_containers_only() -> None:
    [tail] = _pipeline()["pipeline"]["inputs"]
    container = _function_container()["name"]
    # kubelet names each container log /var/log/containers/<pod>_<namespace>_<container>-<id>.log
    ours = f"/var/log/containers/docfn-ocr-00001-deployment-7d4b9c-xk2p_docfn_{container}-0a1b2c.log"
    assert fnmatch.fnmatch(ours, tail["path"])
    assert not fnmatch.fnmatch(ours.replace(f"_{container}-", "_queue-proxy-"), tail["path"])
    assert not fnmatch.fnmatch(ours.replace("_docfn_", "_kube-system_"), tail["path"])


def _run_pipeline(pipeline: dict[str, Any], cri_line: str) -> dict[str, Any] | None:
    """The record Fluent Bit would send for one CRI log line, or None when a filter drops it."""
    match = CRI.match(cri_line)
    assert match is not None
    record: dict[str, Any] | None = match.groupdict()
    parsers = {p["name"]: p for p in pipeline["parsers"]}
    for step in pipeline["pipeline"]["filters"]:
        assert record is not None
        if step["name"] == "parser":
            assert parsers[step["parser"]]["format"] == "json"
            try:
                record = json.loads(record[step["key_name"]])  # reserve_data off: the parsed fields only
            except ValueError:
                return None
        elif step["name"] == "grep":
            key, regex = step["regex"].split(" ", 1)
            if key not in record or not re.search(regex, str(record[key])):
                return None
        elif step["name"] == "record_modifier":
            record = {k: v for k, v in record.items() if k in step["allowlist_key"]}
        else:
            raise AssertionError(f"the simulation does not know filter {step['name']!r}")
    return record


def test_the_pipeline_ships_the_real_request_line_and_drops_the_rest(model_store: Path) -> None:
    server = DocfnServer({"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "ocr"}).start()
    try:
        with server.client() as client:
            ok = client.post(
                "/v1/ocr", content=SAMPLE_PAGE.read_bytes(), headers={"content-type": "image/png"}
            )
    finally:
        _, log = server.stop()
    lines = [line for line in log.splitlines() if line.startswith("{")]
    assert lines
    pipeline = _pipeline()
    shipped = [
        record
        for line in [*lines, "not json at all"]
        if (record := _run_pipeline(pipeline, f"2026-11-25T21:00:00.123456789Z stderr F {line}")) is not None
    ]
    [document] = shipped  # the one request line; every other line is dropped
    assert set(document) >= SHIPPED
    assert document["request_id"] == ok.headers["x-request-id"] and document["status"] == 200
    assert document["task"] == "ocr" and len(document["input_sha256"]) == 64
