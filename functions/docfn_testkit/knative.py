"""Reading rendered Knative manifests (knative/: base and the dev and prod overlays) as the cluster
would: find objects, a function's container and the environment the kubelet gives it, and where the
Gateway routes a request. Rendering the kustomizations stays with tests/knative."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from .paths import ROOT

KNATIVE = ROOT / "knative"
KUSTOMIZATIONS = {
    "base": KNATIVE / "base",
    "dev": KNATIVE / "overlays" / "dev",
    "prod": KNATIVE / "overlays" / "prod",
}
NAMESPACE = "docfn"

Doc = dict[str, Any]


def find(docs, kind: str, name: str | None = None, api: str | None = None) -> list[Doc]:
    return [
        d
        for d in docs
        if d["kind"] == kind
        and (name is None or d["metadata"]["name"] == name)
        and (api is None or d["apiVersion"] == api)
    ]


def one(docs, kind: str, name: str, api: str | None = None) -> Doc:
    found = find(docs, kind, name, api)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def ksvcs(docs) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in find(docs, "Service", api="serving.knative.dev/v1")}


def container_of(ksvc: Doc) -> Doc:
    containers = ksvc["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "one container per function"
    return containers[0]


def effective_env(docs, container: Doc) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom first, then env (which wins).

    ConfigMap values are resolved from the render; Secrets only contribute their key names (value
    None), and none at all in the base, which leaves its Secrets to the overlays.
    """
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in find(docs, "ConfigMap")}
    env: dict[str, Any] = {}
    for src in container.get("envFrom", []):
        if "configMapRef" in src:
            env.update(configmaps[src["configMapRef"]["name"]])
        if "secretRef" in src and (find(docs, "Secret") or find(docs, "ExternalSecret")):
            env.update(dict.fromkeys(secret_keys(docs, src["secretRef"]["name"])))
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "configMapKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["configMapKeyRef"]
            env[var["name"]] = configmaps[ref["name"]][ref["key"]]
        else:
            env[var["name"]] = None
    return env


def secret_keys(docs, name: str) -> set[str] | None:
    """Keys of Secret `name` as rendered, or None when an ExternalSecret/Certificate makes it."""
    for doc in find(docs, "Secret", name):
        return set(doc.get("stringData", {})) | set(doc.get("data", {}))
    for doc in find(docs, "ExternalSecret"):
        if doc["spec"]["target"]["name"] == name:
            return {d["secretKey"] for d in doc["spec"]["data"]}
    for doc in find(docs, "Certificate"):
        if doc["spec"]["secretName"] == name:
            return {"tls.crt", "tls.key"}
    raise AssertionError(f"nothing in the render provides Secret {name}")


def pod_specs(docs):
    for svc in ksvcs(docs).values():
        yield svc["metadata"]["name"], svc["spec"]["template"]["spec"]
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def services_by_host(docs) -> dict[str, Doc]:
    """Cluster DNS name -> (Deployment-backed) Service."""
    return {
        f"{d['metadata']['name']}.{d['metadata']['namespace']}.svc.cluster.local": d
        for d in find(docs, "Service", api="v1")
    }


def attached_routes(docs, gateway: Doc, listener: str) -> list[Doc]:
    return [
        r
        for r in find(docs, "HTTPRoute")
        if any(
            p["name"] == gateway["metadata"]["name"] and p.get("sectionName") == listener
            for p in r["spec"]["parentRefs"]
        )
    ]


def path_matches(match: Doc, path: str, query: dict[str, list[str]]) -> bool:
    spec = match.get("path", {"type": "PathPrefix", "value": "/"})
    value = spec["value"]
    if spec["type"] == "Exact":
        ok = path == value
    elif spec["type"] == "PathPrefix":
        # Gateway API prefixes match whole path elements: /ocr matches /ocr and /ocr/x, not /ocrx.
        ok = value == "/" or path == value.rstrip("/") or path.startswith(value.rstrip("/") + "/")
    else:
        raise NotImplementedError(spec["type"])
    for q in match.get("queryParams", []):
        assert q.get("type", "Exact") == "Exact"
        ok = ok and query.get(q["name"], [None])[0] == q["value"]
    return ok


def route(docs, host: str, url: str) -> tuple[str, str, Doc] | None:
    """Where the Gateway sends GET/POST `url` on `host`: (Host header, path, backendRef), or None.

    Follows Gateway API precedence: an Exact path beats a prefix, a longer prefix beats a
    shorter one, then more query-parameter matches win.
    """
    gateway = one(docs, "Gateway", "docfn")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    candidates = []
    for r in attached_routes(docs, gateway, "https"):
        if host not in r["spec"]["hostnames"]:
            continue
        for rule in r["spec"]["rules"]:
            for match in rule.get("matches", [{}]):
                if path_matches(match, parts.path, query):
                    spec = match.get("path", {"type": "PathPrefix", "value": "/"})
                    rank = (spec["type"] == "Exact", len(spec["value"]), len(match.get("queryParams", [])))
                    candidates.append((rank, match, rule))
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[0], reverse=True)
    assert len(candidates) == 1 or candidates[0][0] != candidates[1][0], f"ambiguous routes for {url}"
    _, match, rule = candidates[0]
    new_host, new_path = host, parts.path
    for f in rule.get("filters", []):
        if f["type"] == "URLRewrite":
            rewrite = f["urlRewrite"]
            new_host = rewrite.get("hostname", new_host)
            if "path" in rewrite:
                assert rewrite["path"]["type"] == "ReplacePrefixMatch"
                prefix = match["path"]["value"].rstrip("/")
                new_path = rewrite["path"]["replacePrefixMatch"].rstrip("/") + parts.path[len(prefix) :]
    (backend,) = rule["backendRefs"]
    return new_host, new_path, backend


def public_host(docs) -> str:
    (https,) = [li for li in one(docs, "Gateway", "docfn")["spec"]["listeners"] if li["protocol"] == "HTTPS"]
    return https["hostname"]


def ksvc_host(task: str) -> str:
    return f"docfn-{task}.{NAMESPACE}.svc.cluster.local"
