"""Callers cannot grow the metrics: every label (and EMF dimension) a request can influence takes its
value from a fixed set. 300 requests to made-up tasks, paths and methods against a real
``docfn serve`` leave ``/metrics`` with the same series, and the size it had after the first unknown
request (± the digits of counters and sums); the request lines' EMF dimensions are from the fixed set."""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from docfn.core.labels import error_label, status_label, task_label
from docfn.core.settings import ALL_TASKS
from docfn_testkit.servers import DocfnServer, running_server

METHODS = ("GET", "PUT", "PATCH", "DELETE", "POST", "PURGE", "OPTIONS")
REQUESTS = 300
# Counters gain digits (1.0 -> 300.0) and latency sums change length; no new series may appear.
SIZE_SLACK_BYTES = 1024


def _word(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits + "-_", k=rng.randint(3, 24)))


def _unknown_request(client: httpx.Client, rng: random.Random) -> None:
    """One request a caller made up: a task, a path, a method, a content type or an option."""
    kind = rng.randrange(5)
    if kind == 0:
        client.post(f"/v1/{_word(rng)}", content=b"x", headers={"content-type": "image/png"})
    elif kind == 1:
        client.request(rng.choice(METHODS), f"/{_word(rng)}/{_word(rng)}")
    elif kind == 2:
        client.request(rng.choice(METHODS[:3]), f"/v1/{rng.choice([*ALL_TASKS, _word(rng)])}")
    elif kind == 3:
        client.post("/v1/ocr", content=b"x", headers={"content-type": f"{_word(rng)}/{_word(rng)}"})
    else:
        client.post(f"/v1/ocr?{_word(rng)}={_word(rng)}", content=b"", headers={"content-type": "image/png"})


def _series(text: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture(scope="module")
def server(model_store: Path) -> Iterator[DocfnServer]:
    yield from running_server(model_store, "ocr", DOCFN_METRICS_EMF="1")


def test_made_up_requests_leave_metrics_bounded(server: DocfnServer) -> None:
    rng = random.Random(20261207)
    with server.client(timeout=30) as client:
        for kind in range(5):  # one of each kind first: the bounded series they create exist now
            _unknown_request(client, random.Random(kind))
        for _ in range(20):
            _unknown_request(client, rng)
        before = client.get("/metrics").text
        for _ in range(REQUESTS):
            _unknown_request(client, rng)
        after = client.get("/metrics").text
    assert _series(after) == _series(before), sorted(_series(after) ^ _series(before))[:10]
    assert abs(len(after) - len(before)) <= SIZE_SLACK_BYTES, (len(before), len(after))
    assert 'task="unknown"' in after
    tasks = {labels.get("task") for _, pairs in _series(after) for labels in [dict(pairs)]} - {None}
    assert tasks <= {*ALL_TASKS, "unknown"}, tasks


def test_request_lines_dimensions_are_from_the_fixed_set(server: DocfnServer) -> None:
    lines = [json.loads(line) for line in server.stderr_text().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("message") == "request"]
    assert len(requests) >= REQUESTS // 5  # the made-up tasks and options of the test above
    for line in requests:
        [directive] = line["_aws"]["CloudWatchMetrics"]
        assert directive["Dimensions"] == [["task"]]
        assert line["task"] in {*ALL_TASKS, "unknown"}, line["task"]
    unknown = [line for line in requests if line["task"] == "unknown"]
    assert unknown and all(len(line["requested_task"]) <= 64 for line in unknown)


@pytest.mark.parametrize(
    ("given", "label"),
    [("ocr", "ocr"), ("OCR", "unknown"), ("../etc", "unknown"), (None, "unknown"), (7, "unknown")],
)
def test_task_label(given: object, label: str) -> None:
    assert task_label(given) == label


@pytest.mark.parametrize(
    ("given", "label"),
    [(200, "200"), ("415", "415"), (418, "4xx"), (599, "5xx"), (1000, "other"), ("x", "other")],
)
def test_status_label(given: object, label: str) -> None:
    assert status_label(given) == label


def test_error_label() -> None:
    assert error_label("bad_options") == "bad_options"
    assert error_label("file_hash_mismatch") == "file_hash_mismatch"
    assert error_label("made-up code") == "other"
