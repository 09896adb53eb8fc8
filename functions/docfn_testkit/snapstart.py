"""SnapStart's snapshot and restores, simulated in one process: ``python -m docfn_testkit.snapstart
OUT.json KEY...`` with a Lambda function's environment (lambda_local.lambda_environment).

No CRIU here (FIELD-NOTES: Debian's criu fails on this kernel), so a restore is simulated with
``os.fork()``: the handler module is imported (init: DOCFN_EAGER_LOAD fetches the pack from S3 and
warms it), init touches Redis, the before-snapshot hook runs, and then each forked child is one
container restored from that snapshot: it runs the after-restore hook and answers a function URL
request and an S3 upload job (KEY, already uploaded) for real. A fork copies the memory like a
restore does, but two things differ, and the parent covers them: redis-py and Python's ``random``
notice a new pid and reset themselves in a child, which a restored microVM (same pid) never
triggers. So the parent, after its children, runs the after-restore hook in its own pid too.
Everything observed is written to OUT.json for the test to compare.
"""

from __future__ import annotations

import base64
import json
import os
import random
import sys
import types
import uuid
from pathlib import Path
from typing import Any

import numpy

from .events import function_url_event, s3_event
from .paths import SAMPLE_PAGE


def _context() -> Any:
    return types.SimpleNamespace(
        aws_request_id=str(uuid.uuid4()), get_remaining_time_in_millis=lambda: 60_000
    )


def _open_sockets(cache: Any) -> int:
    pool = cache._client.connection_pool
    connections = [*pool._available_connections, *pool._in_use_connections]
    return sum(1 for connection in connections if connection._sock is not None)


def _restore(handler: Any, key: str) -> dict[str, Any]:
    """One restored container: the after-restore hook, then real work."""
    handler.after_restore()
    cache = handler.runtime().service.cache
    observed: dict[str, Any] = {
        "pid": os.getpid(),
        "sockets_after_restore": _open_sockets(cache),
        "random": [random.random() for _ in range(4)],
        "numpy": numpy.random.random(4).tolist(),
        "uuid4": str(uuid.uuid4()),
    }
    page = SAMPLE_PAGE.read_bytes()
    event = function_url_event("POST", "/v1/ocr", page, content_type="image/png", base64_body=True)
    response = handler.handler(event, _context())
    body = json.loads(
        base64.b64decode(response["body"]) if response.get("isBase64Encoded") else response["body"]
    )
    observed["http"] = {
        "status": response["statusCode"],
        "text": body["result"]["text"],
        "cold": body["cold"],
        "lambda_cold": response["headers"]["x-docfn-lambda-cold"],
    }
    job = handler.handler(s3_event(key, len(page)), _context())
    observed["job_states"] = [record["state"] for record in job["records"]]
    observed["redis_client_id"] = cache._client.client_id()  # the connection the requests used
    return observed


def main(out: Path, keys: list[str]) -> None:
    from docfn.adapters.aws_lambda import handler

    service = handler.runtime().service
    cache = service.cache
    assert cache.ping(), "init could not reach Redis"  # init's connection, which the snapshot would hold
    snapshot: dict[str, Any] = {"redis_client_id": cache._client.client_id(), "pid": os.getpid()}
    handler.before_snapshot()
    snapshot["ready"] = service.ready
    snapshot["sockets_after_before_snapshot"] = _open_sockets(cache)
    random_state, numpy_state = random.getstate(), numpy.random.get_state()

    restores = []
    for key in keys:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # a container restored from the snapshot
            os.close(read_end)
            code = 0
            try:
                payload = json.dumps(_restore(handler, key)).encode()
            except BaseException as exc:  # reported to the parent, never raised past the fork
                payload, code = json.dumps({"error": repr(exc)}).encode(), 1
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
            os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            restores.append(json.loads(pipe.read()))
        os.waitpid(pid, 0)

    # The same pid as the snapshot, as on Lambda: only the hook can renew connection and seeds here.
    handler.after_restore()
    same_pid = {
        "sockets_after_restore": _open_sockets(cache),
        "random_state_renewed": random.getstate() != random_state,
        "numpy_state_renewed": not all(
            numpy.array_equal(a, b)
            for a, b in zip(numpy.random.get_state()[1:3], numpy_state[1:3], strict=True)
        ),
    }
    cache.ping()
    same_pid["redis_client_id"] = cache._client.client_id()
    out.write_text(json.dumps({"snapshot": snapshot, "restores": restores, "same_pid": same_pid}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
