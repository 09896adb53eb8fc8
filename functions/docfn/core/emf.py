"""CloudWatch embedded metric format (EMF) members of the request log line, by Powertools for AWS
Lambda's EMF provider (``aws_lambda_powertools.metrics``).

On Lambda the request line itself carries the metrics: CloudWatch Logs extracts them with no agent,
no API call and no second line (SPEC: one structured line per request), so the provider's
serialized metric set is merged into the line rather than printed by the library. Its one dimension
is ``task``, always a value of ``docfn.core.labels`` (every dimension value is a billed metric).
Powertools is imported on the first line with EMF on, never elsewhere (Knative, local servers).
"""

from __future__ import annotations

from typing import Any

from .labels import task_label

NAMESPACE = "docfn"
DIMENSIONS = ("task",)
# name -> (CloudWatch unit, the value of a request line's fields)
METRICS = {
    "Requests": "Count",
    "Errors": "Count",
    "ServerErrors": "Count",
    "Duration": "Milliseconds",
    "CacheHits": "Count",
    "ColdStarts": "Count",
}


def _values(fields: dict[str, Any]) -> dict[str, float]:
    status = int(fields.get("status") or 0)
    return {
        "Requests": 1,
        "Errors": int(status >= 400),
        "ServerErrors": int(status >= 500),
        "Duration": float(fields.get("duration_ms") or 0.0),
        "CacheHits": int(bool(fields.get("cache_hit"))),
        "ColdStarts": int(bool(fields.get("cold"))),
    }


def emf_members(fields: dict[str, Any]) -> dict[str, Any]:
    """The line's EMF members: ``_aws`` metadata, the ``task`` dimension and one value per metric."""
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
        AmazonCloudWatchEMFProvider,
    )

    # A provider per line: its metric set is its own (no state shared between concurrent requests).
    provider = AmazonCloudWatchEMFProvider(namespace=NAMESPACE)
    provider.service = None  # no "service" dimension from POWERTOOLS_SERVICE_NAME: the set is fixed
    provider.add_dimension(name="task", value=task_label(fields.get("task")))
    for name, value in _values(fields).items():
        provider.add_metric(name=name, unit=METRICS[name], value=value)
    return dict(provider.serialize_metric_set())
