"""Offline checks of the Knative manifests under knative/ (issue 7).

Every kustomization (base, dev, prod) is rendered with the real kustomize (`kubectl kustomize`,
docfn_testkit/kustomize.py) and then:
- built-in kinds validate against the Kubernetes schemas (kubernetes-validate, strict);
- Knative Services validate against Knative Serving's CRD schema (tests/data/schemas),
  strictly: a field the CRD does not know (e.g. `lifecycle`) fails;
- other custom resources are checked for the fields their controllers require;
- the contract with the app and the SPEC: one Service per task, scale-to-zero after
  10 idle minutes, min 0 / max 10, concurrency, resources, probes, env, the command;
- the public route answers /v1/<task> and /<task> for every task (simulated with the
  Gateway API matching rules), TLS, the rate limit; upload events reach every task
  (the EventTransform's JSONata is evaluated on the sample S3 events); metrics scraping.
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from docfn.core.settings import ALL_TASKS, Settings
from docfn.tasks.registry import default_pack_settings, implemented_tasks
from docfn_testkit.knative import (
    KUSTOMIZATIONS,
    NAMESPACE,
    Doc,
    attached_routes,
    container_of,
    effective_env,
    find,
    ksvc_host,
    ksvcs,
    one,
    pod_specs,
    public_host,
    route,
    secret_keys,
    services_by_host,
)
from docfn_testkit.kustomize import kustomize_build
from docfn_testkit.paths import EVENTS, SCHEMAS

SERVING_CRD = SCHEMAS / "knative-serving-service-crd.yaml"

# The implemented tasks: the only ones deployed (issue 11). Today that is every task name
# (tests/test_docs_consistency.py); NOT_DEPLOYED keeps the checks for a name added before its code.
TASKS = tuple(implemented_tasks())
NOT_DEPLOYED = tuple(t for t in ALL_TASKS if t not in TASKS)
# The pack variables each function must get, and the pack each names (s3://BUCKET/models/...),
# from the code's own task contract and catalog. In the cluster a function never builds or
# downloads a pack itself, so this is complete.
PACKS = {task: default_pack_settings(task) for task in TASKS}
OVERLAYS = ("dev", "prod")
K8S_VERSIONS = ("1.33.0", kubernetes_validate.latest_version())
SERVE_COMMAND = ["docfn", "serve", "--host", "0.0.0.0"]
# Knative sets these itself and rejects a Service that sets them.
RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}
# Knative's default max-revision-timeout-seconds.
MAX_REVISION_TIMEOUT = 600
# API groups of the kinds Kubernetes itself serves (validated against its schemas); the rest are CRDs.
BUILTIN_GROUPS = {
    "",
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
}


@cache
def rendered(name: str) -> tuple[Doc, ...]:
    return tuple(kustomize_build(KUSTOMIZATIONS[name]))


def group_of(doc: Doc) -> str:
    api = doc.get("apiVersion", "")
    return api.split("/")[0] if "/" in api else ""


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """'repo/name:tag@sha256:...' -> (name, tag, digest)."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    name, tag = image, None
    if ":" in image.rsplit("/", 1)[-1]:
        name, tag = image.rsplit(":", 1)
    return name, tag, digest


def cpu_cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def memory_bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(quantity)


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_renders(name):
    docs = rendered(name)
    assert docs
    ids = [(d["apiVersion"], d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    assert len(ids) == len(set(ids)), "duplicate resources"


# --------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_builtin_kinds_validate_against_kubernetes(name, version):
    builtin = [d for d in rendered(name) if group_of(d) in BUILTIN_GROUPS]
    assert builtin
    for doc in builtin:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(
                f"{doc['kind']}/{doc['metadata']['name']} (k8s {version}): {err.message} at {list(err.path)}"
            )


def structural_to_jsonschema(node: Any) -> Any:
    """OpenAPI v3 structural schema (CRD) -> JSON Schema (draft 4), strict about unknown fields.

    nullable -> type also allows null; x-kubernetes-int-or-string -> integer or string;
    an object with properties and no x-kubernetes-preserve-unknown-fields gets
    additionalProperties: false (the API server would prune such a field; we fail on it).
    Other x-kubernetes-* keys are dropped.
    """
    if isinstance(node, list):
        return [structural_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: structural_to_jsonschema(v)
        for k, v in node.items()
        if not k.startswith("x-kubernetes-") and k not in ("nullable", "description")
    }
    if "properties" in node:
        out["properties"] = {k: structural_to_jsonschema(v) for k, v in node["properties"].items()}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        node.get("type") == "object"
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def serving_validator() -> jsonschema.Draft4Validator:
    crd = yaml.safe_load(SERVING_CRD.read_text())
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = structural_to_jsonschema(v1["schema"]["openAPIV3Schema"])
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def test_schema_conversion_is_strict():
    validator = serving_validator()
    good = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"template": {"spec": {"containers": [{"image": "x", "ports": [{"containerPort": 8080}]}]}}},
    }
    assert not list(validator.iter_errors(good))
    bad = json.loads(json.dumps(good))
    bad["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = {"preStop": {}}
    assert list(validator.iter_errors(bad)), "lifecycle is not allowed on a Knative container"
    bad = json.loads(json.dumps(good))
    bad["spec"]["template"]["spec"]["containerConcurrency"] = "2"
    assert list(validator.iter_errors(bad))


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_knative_services_validate_against_serving_crd(name):
    services = ksvcs(rendered(name))
    assert services
    for svc in services.values():
        errors = sorted(serving_validator().iter_errors(svc), key=lambda e: list(e.path))
        assert not errors, [f"{svc['metadata']['name']}: {e.message} at {list(e.path)}" for e in errors]
        # Knative Service names must be DNS-1035 labels short enough for revision names.
        assert re.fullmatch(r"[a-z]([-a-z0-9]{0,48}[a-z0-9])?", svc["metadata"]["name"])


def require(doc: Doc, *paths: str) -> None:
    for path in paths:
        node: Any = doc
        for part in path.split("."):
            assert isinstance(node, dict) and part in node, (
                f"{doc['kind']}/{doc['metadata']['name']}: no {path}"
            )
            node = node[part]
        assert node not in (None, "", [], {}), f"{doc['kind']}/{doc['metadata']['name']}: empty {path}"


# Fields each custom resource's controller (or CRD) requires, from their CRDs.
CUSTOM_REQUIRED = {
    ("serving.knative.dev/v1", "Service"): ("spec.template.spec.containers",),
    ("gateway.networking.k8s.io/v1", "Gateway"): ("spec.gatewayClassName", "spec.listeners"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): ("spec.parentRefs", "spec.rules"),
    ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"): ("spec.from", "spec.to"),
    ("gateway.envoyproxy.io/v1alpha1", "BackendTrafficPolicy"): ("spec.targetRefs", "spec.rateLimit.type"),
    ("eventing.knative.dev/v1", "Broker"): (),
    ("eventing.knative.dev/v1", "Trigger"): ("spec.broker", "spec.subscriber"),
    ("eventing.knative.dev/v1alpha1", "EventTransform"): ("spec.jsonata.expression", "spec.sink"),
    ("sources.knative.dev/v1alpha1", "IntegrationSource"): ("spec.aws.sqs.arn", "spec.aws.auth", "spec.sink"),
    ("monitoring.coreos.com/v1", "PodMonitor"): ("spec.selector", "spec.podMetricsEndpoints"),
    ("external-secrets.io/v1", "ExternalSecret"): (
        "spec.secretStoreRef.name",
        "spec.target.name",
        "spec.data",
    ),
    ("cert-manager.io/v1", "Certificate"): ("spec.secretName", "spec.issuerRef.name", "spec.dnsNames"),
}


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_custom_resources_are_known_and_complete(name):
    for doc in rendered(name):
        if group_of(doc) in BUILTIN_GROUPS:
            continue
        key = (doc["apiVersion"], doc["kind"])
        assert key in CUSTOM_REQUIRED, f"unexpected custom resource {key}: add its checks"
        require(doc, "metadata.name", "metadata.namespace", *CUSTOM_REQUIRED[key])


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_resource_is_labelled_and_namespaced(name):
    for doc in rendered(name):
        meta = doc["metadata"]
        assert meta.get("labels", {}).get("app.kubernetes.io/part-of") == "docfn", meta["name"]
        if doc["kind"] == "Namespace":
            assert meta["name"] == NAMESPACE
        elif doc["kind"] == "ReferenceGrant":
            assert meta["namespace"] == "eg-internal"  # it must live where the Service it grants is
        else:
            assert meta.get("namespace") == NAMESPACE, f"{doc['kind']}/{meta['name']}"


# --------------------------------------------------------------------------- the functions


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_one_service_per_task(name):
    services = ksvcs(rendered(name))
    # Exactly the implemented tasks: nothing without code is deployed.
    assert set(services) == {f"docfn-{t}" for t in TASKS}
    for task in TASKS:
        svc = services[f"docfn-{task}"]
        assert svc["metadata"]["labels"]["docfn.dev/task"] == task
        # The public door is the HTTPRoute; the Services themselves stay cluster-local.
        assert svc["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
        env = {e["name"]: e for e in container_of(svc).get("env", [])}
        assert env["DOCFN_TASKS"]["value"] == task


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_autoscaling_scales_to_zero_after_ten_idle_minutes(name):
    for svc in ksvcs(rendered(name)).values():
        template = svc["spec"]["template"]
        ann = template["metadata"]["annotations"]
        assert ann["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"  # KPA can reach zero
        assert ann["autoscaling.knative.dev/scale-to-zero-pod-retention-period"] == "10m"
        assert ann["autoscaling.knative.dev/min-scale"] == "0"
        assert ann["autoscaling.knative.dev/max-scale"] == "10"
        assert ann["autoscaling.knative.dev/metric"] == "concurrency"
        # No legacy camelCase duplicates (Knative rejects a key given twice).
        assert not [k for k in ann if re.search(r"/(minScale|maxScale|scaleToZeroPodRetentionPeriod)$", k)]
        concurrency = template["spec"]["containerConcurrency"]
        target = float(ann["autoscaling.knative.dev/target"])
        assert 0 < target <= concurrency
        timeout = template["spec"]["timeoutSeconds"]
        assert 60 <= timeout <= MAX_REVISION_TIMEOUT
        if svc["metadata"]["name"] == "docfn-vlm":
            # The VLM batches what arrives together: a pod takes up to two full batches (one
            # decoding, one gathering), the app's batching queue holds as many, and it scales out
            # past one batch;
            # its chat deadline ends inside the Service's.
            env = {e["name"]: e.get("value") for e in container_of(svc)["env"]}
            max_batch = Settings().vlm_max_batch
            assert concurrency == 2 * max_batch == int(env["DOCFN_VLM_MAX_QUEUE"])
            assert target == max_batch
            assert float(env["DOCFN_VLM_TIMEOUT_SECONDS"]) < timeout
            continue
        # Sized to CPU: inference is CPU-bound, so no more requests in flight than about
        # one per core of the limit (plus one waiting).
        cores = cpu_cores(container_of(svc)["resources"]["limits"]["cpu"])
        assert 1 <= concurrency <= math.ceil(cores) + 1
        assert 60 <= timeout <= MAX_REVISION_TIMEOUT


def test_base_resources_are_the_spec_starting_point():
    for svc in ksvcs(rendered("base")).values():
        assert container_of(svc)["resources"] == {
            "requests": {"cpu": "1000m", "memory": "3Gi"},
            "limits": {"cpu": "1500m", "memory": "4Gi"},
        }


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_resources_are_consistent(name):
    for svc in ksvcs(rendered(name)).values():
        res = container_of(svc)["resources"]
        assert cpu_cores(res["requests"]["cpu"]) <= cpu_cores(res["limits"]["cpu"])
        assert memory_bytes(res["requests"]["memory"]) <= memory_bytes(res["limits"]["memory"])
        # A model pack must still fit: never less memory than SPEC's 4Gi limit.
        assert memory_bytes(res["limits"]["memory"]) >= 4 * 2**30


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_container_runs_the_http_server_like_the_image_would(name):
    for svc in ksvcs(rendered(name)).values():
        c = container_of(svc)
        assert c["command"] == SERVE_COMMAND
        assert "args" not in c
        assert c["ports"] == [{"name": "http1", "containerPort": 8080}]
        assert not RESERVED_ENV & {e["name"] for e in c.get("env", [])}
        # The server drains on SIGTERM; Knative adds its own preStop (queue-proxy drain)
        # and sets terminationGracePeriodSeconds from timeoutSeconds, so neither is set here.
        assert "lifecycle" not in c
        assert "terminationGracePeriodSeconds" not in svc["spec"]["template"]["spec"]


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_probes(name):
    for svc in ksvcs(rendered(name)).values():
        c = container_of(svc)
        live, ready = c["livenessProbe"]["httpGet"], c["readinessProbe"]["httpGet"]
        assert live["path"] == "/healthz"
        assert ready["path"] == "/readyz"
        for probe in (live, ready):
            # Knative only allows the container's own port; omitting it means exactly that.
            assert probe.get("port", "http1") in ("http1", 8080)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_images(name):
    for task in TASKS:
        image = container_of(ksvcs(rendered(name))[f"docfn-{task}"])["image"]
        repo, tag, digest = split_image(image)
        assert repo.rsplit("/", 1)[-1] == f"docfn-{task}"
        if name == "base":
            assert repo == f"ghcr.io/example/docfn-{task}"
        else:
            assert not repo.startswith("ghcr.io/example/"), "overlays set the registry"
            assert digest or tag not in (None, "latest"), "overlays pin a tag"
        if name == "dev":
            # Knative skips tag-to-digest resolution for dev.local: images loaded into kind work.
            assert repo.startswith("dev.local/")


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_environment_from_configmap_and_secret(name):
    docs = rendered(name)
    config = one(docs, "ConfigMap", "docfn-config")["data"]
    for key in ("DOCFN_BUCKET", "DOCFN_LOG_LEVEL", "DOCFN_MAX_BODY_BYTES", "DOCFN_INFERENCE_TIMEOUT_SECONDS"):
        assert config.get(key), key
    assert config["DOCFN_EAGER_LOAD"] == "1"
    assert int(config["DOCFN_MAX_BODY_BYTES"]) > 0
    # Synchronous requests: docfn's default deadline, ended before the routes cut the request.
    deadline = float(config["DOCFN_INFERENCE_TIMEOUT_SECONDS"])
    assert deadline == Settings().inference_timeout_seconds
    for http_route in find(docs, "HTTPRoute"):
        for rule in http_route["spec"]["rules"]:
            if "timeouts" in rule:  # a rule without one waits for the Service's timeoutSeconds (300)
                assert deadline < float(rule["timeouts"]["request"].removesuffix("s"))
    for task in TASKS:
        c = container_of(ksvcs(docs)[f"docfn-{task}"])
        assert {"configMapRef": {"name": "docfn-config"}} in c["envFrom"]
        assert {"secretRef": {"name": "docfn-secrets"}} in c["envFrom"]
        # Exactly the pack variables the app reads, each naming the task's pack in this
        # environment's bucket; nothing else that looks like one (e.g. DOCFN_MODEL_URI_OCR).
        env = effective_env(docs, c)
        packs = {k: v for k, v in env.items() if "MODEL" in k or k.endswith("_URI")}
        expected = {k: f"s3://{config['DOCFN_BUCKET']}/models/{v}" for k, v in PACKS[task].items()}
        assert packs == expected, task


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_referenced_configmap_and_secret_exists(name):
    docs = rendered(name)
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in find(docs, "ConfigMap")}
    for owner, spec in pod_specs(docs):
        for c in spec["containers"]:
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    assert src["configMapRef"]["name"] in configmaps, owner
                if "secretRef" in src:
                    secret_keys(docs, src["secretRef"]["name"])
            for var in c.get("env", []):
                ref = var.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    assert ref["configMapKeyRef"]["key"] in configmaps[ref["configMapKeyRef"]["name"]], owner
                if "secretKeyRef" in ref:
                    assert ref["secretKeyRef"]["key"] in secret_keys(docs, ref["secretKeyRef"]["name"]), owner
    keys = secret_keys(docs, "docfn-secrets")
    assert "DOCFN_REDIS_URL" in keys
    if name == "dev":
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= keys
    else:
        # Prod uses IAM roles for service accounts, never stored AWS keys.
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & keys


def test_prod_functions_run_with_an_iam_role():
    docs = rendered("prod")
    accounts = {d["metadata"]["name"]: d for d in find(docs, "ServiceAccount")}
    for svc in ksvcs(docs).values():
        account = accounts[svc["spec"]["template"]["spec"]["serviceAccountName"]]
        assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert "DOCFN_S3_ENDPOINT_URL" not in one(docs, "ConfigMap", "docfn-config")["data"]


def assert_backed(docs, service: Doc, port: int) -> None:
    """The Service exposes `port` and selects a Deployment's pods on a named port they have."""
    (svc_port,) = [p for p in service["spec"]["ports"] if p["port"] == port]
    selector = service["spec"]["selector"]
    deployments = [
        d
        for d in find(docs, "Deployment")
        if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert len(deployments) == 1
    ports = {p["name"] for c in deployments[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
    assert svc_port["targetPort"] in ports


def test_dev_runs_redis_and_s3_in_cluster():
    docs = rendered("dev")
    hosts = services_by_host(docs)
    config = one(docs, "ConfigMap", "docfn-config")["data"]
    s3 = urlsplit(config["DOCFN_S3_ENDPOINT_URL"])
    assert s3.scheme == "http"
    assert_backed(docs, hosts[s3.hostname], s3.port)
    redis_url = urlsplit(one(docs, "Secret", "docfn-secrets")["stringData"]["DOCFN_REDIS_URL"])
    assert redis_url.scheme == "redis"
    assert redis_url.password
    assert_backed(docs, hosts[redis_url.hostname], redis_url.port)
    # The in-cluster Redis requires the same password the functions use.
    redis = one(docs, "Deployment", "docfn-redis")["spec"]["template"]["spec"]["containers"][0]
    assert "--requirepass" in redis["args"]
    password_ref = {e["name"]: e for e in redis["env"]}["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert one(docs, "Secret", password_ref["name"])["stringData"][password_ref["key"]] == redis_url.password
    # The bootstrap Job creates the bucket the functions use.
    job = one(docs, "Job", "docfn-dev-bootstrap")["spec"]["template"]["spec"]["containers"][0]
    assert "create-bucket" in job["args"][0]
    assert "docfn-uploads" in job["args"][0]


# --------------------------------------------------------------------------- routing


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_one_host_routes_every_task(name):
    docs = rendered(name)
    host = public_host(docs)
    for task in TASKS:
        for url, path in (
            (f"/v1/{task}", f"/v1/{task}"),
            (f"/{task}", f"/v1/{task}"),
            (f"/v1/{task}?pages=1-3", f"/v1/{task}"),
            (f"/{task}/", f"/v1/{task}/"),
        ):
            assert route(docs, host, url)[:2] == (ksvc_host(task), path), url
        assert route(docs, host, f"/{task}x") is None
        assert route(docs, host, f"/v1/{task}x") is None
        assert route(docs, host, f"/v1/uploads?task={task}")[0] == ksvc_host(task)
    # Uploads without a task and job lookups go to parse, as Terraform's jobs_task does.
    assert route(docs, host, "/v1/uploads")[0] == ksvc_host("parse")
    assert route(docs, host, "/v1/jobs/0123abcd")[:2] == (ksvc_host("parse"), "/v1/jobs/0123abcd")
    # Nothing unimplemented is routed (or advertised): no such Service exists.
    for task in NOT_DEPLOYED:
        for url in (f"/v1/{task}", f"/{task}"):
            assert route(docs, host, url) is None, url
        assert route(docs, host, f"/v1/uploads?task={task}")[0] == ksvc_host("parse")
    for url in ("/v1/chat/completions", "/v1/models"):
        assert route(docs, host, url) is None, url
    # Liveness/readiness/metrics are for the cluster, not the internet.
    for private in ("/healthz", "/readyz", "/metrics", "/v1/events"):
        assert route(docs, host, private) is None, private
    assert route(docs, "other.example.org", "/v1/ocr") is None


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_routes_reach_knative_through_its_internal_gateway(name):
    docs = rendered(name)
    services = ksvcs(docs)
    grants = find(docs, "ReferenceGrant")
    for r in find(docs, "HTTPRoute"):
        assert len(r["spec"]["rules"]) <= 16, "Gateway API allows 16 rules per HTTPRoute"
        for rule in r["spec"]["rules"]:
            assert len(rule.get("matches", [])) <= 64
            for f in rule.get("filters", []):
                if f["type"] == "URLRewrite" and "hostname" in f["urlRewrite"]:
                    svc_name, ns = f["urlRewrite"]["hostname"].split(".")[:2]
                    assert ns == NAMESPACE
                    assert svc_name in services
            for backend in rule.get("backendRefs", []):
                assert (backend["name"], backend.get("namespace"), backend["port"]) == (
                    "knative-internal",
                    "eg-internal",
                    80,
                )
                assert any(
                    {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": NAMESPACE}
                    in g["spec"]["from"]
                    and {"group": "", "kind": "Service", "name": "knative-internal"} in g["spec"]["to"]
                    for g in grants
                )
            if rule.get("backendRefs"):
                # The gateway must wait at least as long as the function may take.
                timeout = rule["timeouts"]["request"]
                assert re.fullmatch(r"\d+s", timeout)
                slowest = max(s["spec"]["template"]["spec"]["timeoutSeconds"] for s in services.values())
                assert int(timeout[:-1]) >= slowest


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_tls_on_the_public_host(name):
    docs = rendered(name)
    gateway = one(docs, "Gateway", "docfn")
    listeners = {li["name"]: li for li in gateway["spec"]["listeners"]}
    https = listeners["https"]
    assert (https["protocol"], https["port"], https["tls"]["mode"]) == ("HTTPS", 443, "Terminate")
    (cert,) = https["tls"]["certificateRefs"]
    if name == "prod":
        assert secret_keys(docs, cert["name"]) == {"tls.crt", "tls.key"}
        (certificate,) = find(docs, "Certificate")
        assert https["hostname"] in certificate["spec"]["dnsNames"]
    for r in find(docs, "HTTPRoute"):
        assert r["spec"]["hostnames"] == [https["hostname"]]
        for parent in r["spec"]["parentRefs"]:
            assert parent["name"] == "docfn"
            assert parent["sectionName"] in listeners
    # Plain HTTP only redirects to HTTPS.
    for r in attached_routes(docs, gateway, "http"):
        for rule in r["spec"]["rules"]:
            assert not rule.get("backendRefs")
            (redirect,) = rule["filters"]
            assert redirect["requestRedirect"]["scheme"] == "https"


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_rate_limit_covers_every_public_route(name):
    docs = rendered(name)
    (policy,) = find(docs, "BackendTrafficPolicy")
    targets = {(t["group"], t["kind"], t["name"]) for t in policy["spec"]["targetRefs"]}
    gateway = one(docs, "Gateway", "docfn")
    for r in attached_routes(docs, gateway, "https"):
        assert ("gateway.networking.k8s.io", "HTTPRoute", r["metadata"]["name"]) in targets
    limit = policy["spec"]["rateLimit"]
    kind = limit["type"]
    assert kind in ("Local", "Global")
    assert set(limit) == {"type", kind.lower()}
    rules = limit[kind.lower()]["rules"]
    assert rules
    for rule in rules:
        assert rule["limit"]["requests"] > 0
        assert rule["limit"]["unit"] in ("Second", "Minute", "Hour", "Day")
    if name == "prod":
        # Per client, shared across Envoy replicas.
        assert kind == "Global"
        assert rules[0]["clientSelectors"][0]["sourceCIDR"]["type"] == "Distinct"


# --------------------------------------------------------------------------- events


def transform(docs) -> Any:
    """The EventTransform's JSONata, compiled (jsonata-python: the dev extra)."""
    jsonata = pytest.importorskip("jsonata")
    (et,) = find(docs, "EventTransform")
    return jsonata.Jsonata(et["spec"]["jsonata"]["expression"])


def sqs_delivered_event(key: str, as_string: bool = True) -> Doc:
    """A CloudEvent as the SQS source would emit it, around the sample S3 notification."""
    body = json.loads(json.loads((EVENTS / "s3-via-sqs.json").read_text())["Records"][0]["body"])
    body["Records"][0]["s3"]["object"]["key"] = key
    return {
        "specversion": "1.0",
        "id": "5f1b7c1e-0000-4000-8000-000000000001",
        "source": "aws.sqs.docfn-uploads",
        "type": "dev.knative.connector.event.aws-sqs",
        "time": "2026-01-01T00:00:00Z",
        "data": json.dumps(body) if as_string else body,
    }


def deliveries(docs, event: Doc) -> list[str]:
    """Names of the Knative Services whose Triggers accept `event`."""
    out = []
    for trigger in find(docs, "Trigger"):
        attrs = trigger["spec"].get("filter", {}).get("attributes", {})
        if all(event.get(k) == v for k, v in attrs.items()):
            out.append(trigger["spec"]["subscriber"]["ref"]["name"])
    return out


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_upload_events_reach_the_function_of_their_prefix(name):
    docs = rendered(name)
    expr = transform(docs)
    for task in TASKS:
        for as_string in (True, False):
            out = expr.evaluate(sqs_delivered_event(f"uploads/{task}/2026/scan+of+page%C3%A9.pdf", as_string))
            assert out["specversion"] == "1.0"
            assert out["id"] and out["source"] and out["type"]
            # /v1/events gets the S3 notification JSON itself as the CloudEvent data.
            assert out["data"]["Records"][0]["s3"]["object"]["key"].startswith(f"uploads/{task}/")
            assert deliveries(docs, out) == [f"docfn-{task}"]
    # Results the functions write, other prefixes, S3's test event: delivered nowhere.
    for key in (
        "results/ocr/abc.json",
        "uploads/ocr",
        "ocr/x.png",
        "uploads/unknown/x.png",
        "uploads/OCR/x.png",
        *(f"uploads/{task}/x.png" for task in NOT_DEPLOYED),
    ):
        assert deliveries(docs, expr.evaluate(sqs_delivered_event(key))) == [], key
    test_event = sqs_delivered_event("x")
    test_event["data"] = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})
    assert deliveries(docs, expr.evaluate(test_event)) == []


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_event_wiring(name):
    docs = rendered(name)
    services = ksvcs(docs)
    (source,) = find(docs, "IntegrationSource")
    (et,) = find(docs, "EventTransform")
    (broker,) = find(docs, "Broker")
    sqs = source["spec"]["aws"]["sqs"]
    assert re.fullmatch(r"arn:aws:sqs:[a-z0-9-]+:\d{12}:[\w-]+", sqs["arn"])
    assert sqs["region"] == sqs["arn"].split(":")[3]
    assert sqs["deleteAfterRead"] is True
    assert source["spec"]["sink"]["ref"] == {
        "apiVersion": et["apiVersion"],
        "kind": "EventTransform",
        "name": et["metadata"]["name"],
    }
    assert et["spec"]["sink"]["ref"] == {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "name": "docfn",
    }
    assert broker["metadata"]["name"] == "docfn"
    auth = source["spec"]["aws"]["auth"]
    if name == "prod":
        assert set(auth) == {"serviceAccountName"}
        one(docs, "ServiceAccount", auth["serviceAccountName"])
    else:
        assert set(auth) == {"secret"}
        if name == "dev":
            assert secret_keys(docs, auth["secret"]["ref"]["name"]) == {"aws.accessKey", "aws.secretKey"}
            endpoint = urlsplit(sqs["uriEndpointOverride"])
            assert sqs["overrideEndpoint"] is True
            assert_backed(docs, services_by_host(docs)[endpoint.hostname], endpoint.port)
    triggers = {t["metadata"]["name"]: t for t in find(docs, "Trigger")}
    assert set(triggers) == {f"docfn-{t}" for t in TASKS}
    for task in TASKS:
        spec = triggers[f"docfn-{task}"]["spec"]
        assert spec["broker"] == "docfn"
        assert spec["filter"]["attributes"]["docfntask"] == task
        sub = spec["subscriber"]
        assert sub["ref"] == {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "name": f"docfn-{task}",
        }
        assert sub["ref"]["name"] in services
        assert sub["uri"] == "/v1/events"


# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_prometheus_scrapes_every_function(name):
    docs = rendered(name)
    (monitor,) = find(docs, "PodMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    # Knative names the user container's port "user-port" in the pods it creates.
    assert endpoint["port"] == "user-port"
    assert endpoint["path"] == "/metrics"
    for svc in ksvcs(docs).values():
        assert selector.items() <= svc["spec"]["template"]["metadata"]["labels"].items()
    # Only the functions: not Redis, S3 or the bootstrap Job.
    for d in find(docs, "Deployment"):
        assert not selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
