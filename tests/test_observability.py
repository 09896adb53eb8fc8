"""The Grafana dashboard operators import (docs/observability/grafana-dashboard.json) queries only
metrics the app really exports: every metric name in every PromQL expression, and every label it
matches or groups by, is checked against ``/metrics`` of a real ``docfn serve`` after real requests
(served, refused, a cold start, cache lookups, a cache whose Redis is down)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from docfn_testkit.paths import ROOT, SAMPLE_PAGE
from docfn_testkit.servers import DocfnServer, free_port

DASHBOARD = ROOT / "docs" / "observability" / "grafana-dashboard.json"
# PromQL's functions, aggregations and keywords: identifiers in an expression that are not metrics.
PROMQL_WORDS = {
    "sum", "avg", "max", "min", "count", "rate", "irate", "increase", "histogram_quantile", "by",
    "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "topk",
    "bottomk", "delta", "deriv", "abs", "clamp_min", "clamp_max", "sort", "time", "vector", "scalar",
}  # fmt: skip
PANELS_REQUIRED = (
    "Requests per second",
    "Latency p95 / p99",
    "Error rate",
    "Cache hit ratio",
    "Cold starts",
    "CPU",
    "Memory",
)


def _expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers outside strings, label matchers, groupings
    and ranges that are not PromQL's own words."""
    stripped = re.sub(r'"[^"]*"', "", expr)
    stripped = re.sub(r"\{[^}]*\}", " ", stripped)
    stripped = re.sub(r"\[[^\]]*\]", " ", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", stripped)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", stripped))
    return {w for w in words if w not in PROMQL_WORDS}


def used_labels(expr: str) -> dict[str, set[str]]:
    """metric -> labels it is matched on (``m{label=...}``); and ``*`` -> labels grouped by."""
    labels: dict[str, set[str]] = {}
    for metric, matchers in re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}", expr):
        labels.setdefault(metric, set()).update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*[=!~]", matchers))
    for grouping in re.findall(r"\bby\s*\(([^)]*)\)", expr):
        labels.setdefault("*", set()).update(part.strip() for part in grouping.split(",") if part.strip())
    return labels


def test_the_parser_finds_metrics_and_labels() -> None:
    expr = 'sum by (le, task) (rate(docfn_request_seconds_bucket{status=~"5.."}[5m])) / sum(x_total)'
    assert metric_names(expr) == {"docfn_request_seconds_bucket", "x_total"}
    assert used_labels(expr) == {"docfn_request_seconds_bucket": {"status"}, "*": {"le", "task"}}


@pytest.fixture(scope="module")
def exported(model_store: Path) -> dict[str, set[str]]:
    """Sample name -> label names, from /metrics after real traffic."""
    from prometheus_client.parser import text_string_to_metric_families

    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: cache failures and the breaker
    server = DocfnServer(
        {"DOCFN_MODEL_STORE": str(model_store), "DOCFN_TASKS": "ocr", "DOCFN_REDIS_URL": dead_redis}
    ).start()
    try:
        with server.client() as client:
            page = SAMPLE_PAGE.read_bytes()
            assert (
                client.post("/v1/ocr", content=page, headers={"content-type": "image/png"}).status_code == 200
            )
            assert (
                client.post("/v1/ocr", content=b"hello", headers={"content-type": "text/plain"}).status_code
                == 415
            )
            text = client.get("/metrics").text
    finally:
        server.stop()
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


def test_dashboard_has_the_operator_panels() -> None:
    titles = [panel["title"] for panel in json.loads(DASHBOARD.read_text())["panels"]]
    for wanted in PANELS_REQUIRED:
        assert any(title.startswith(wanted) for title in titles), wanted


def test_every_dashboard_metric_and_label_is_exported(exported: dict[str, set[str]]) -> None:
    expressions = _expressions()
    used = set().union(*(metric_names(expr) for expr in expressions))
    assert {"docfn_requests_total", "docfn_request_seconds_bucket", "process_resident_memory_bytes"} <= used
    assert used <= set(exported), sorted(used - set(exported))
    for expr in expressions:
        labels = used_labels(expr)
        for metric, names in labels.items():
            if metric != "*":
                assert names <= exported[metric], (expr, metric, names - exported[metric])
        grouped = labels.get("*", set())
        in_expr = set().union(*(exported[m] for m in metric_names(expr)))
        assert grouped <= in_expr, (expr, grouped - in_expr)
