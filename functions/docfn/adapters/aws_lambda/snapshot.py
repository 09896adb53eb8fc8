"""Lambda SnapStart's runtime hooks: what must not be shared by every container restored from one
snapshot, dropped before the snapshot and made anew after each restore.

SnapStart (Terraform ``snap_start_tasks``) runs init once per published version, snapshots the
microVM's memory and disk, and resumes every new container from that snapshot. The image's runtime
client, awslambdaric, implements the restore protocol for container images itself: when
``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`` it runs the ``snapshot_restore_py`` before-snapshot
hooks at the end of init, calls the Runtime API's ``GET /runtime/restore/next`` (the snapshot is
taken while that call is pending, and it returns in each restored container), then runs the
after-restore hooks before the first invocation. So no ``com.amazonaws.lambda.feature.snapstart``
label is needed: AWS documents that label as the opt-in for images that do *not* implement
``/restore/next``.

What a restored container must not inherit from the snapshot:

- open sockets: a Redis connection (its server-side ``CLIENT ID``, its AUTH) and boto3's HTTP
  pools are one TCP connection shared by every restored copy, and long dead by the time a copy
  resumes. The Redis pool is disconnected; the next command connects afresh.
- AWS credentials: boto3 sessions and clients cache the credentials they resolved during init;
  dropped, so the next client reads what Lambda gives the restored container.
- pseudo-random state: Python's ``random`` and numpy's legacy global generator would replay the
  same sequence in every copy; both are re-seeded from the OS. ``uuid.uuid4`` and ``secrets`` read
  ``os.urandom`` on every call, which Lambda keeps unique per restored environment, so they need
  nothing (and docfn's request ids come from Lambda's request id or uuid4).

Before the snapshot the hooks also wait for the packs that ``DOCFN_EAGER_LOAD`` loads in a
background thread: a snapshot taken half-way through a download would hold an open S3 connection
and a half-loaded model.
"""

from __future__ import annotations

import logging
import random
import sys
from collections.abc import Callable
from typing import Any

from ...cloud import aws_clients

log = logging.getLogger("docfn.snapstart")


def drop_connections(service: Any) -> None:
    """Close every pooled connection: Redis (the next command reconnects) and boto3's clients."""
    drop = getattr(getattr(service, "cache", None), "drop_connections", None)
    if drop is not None:
        drop()
    aws_clients.forget_clients()


def reseed_randomness() -> None:
    """New seeds from the OS for the process-wide pseudo-random generators."""
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:  # only if something imported it; never import numpy just for this
        numpy.random.seed()


def before_snapshot(service: Any, eager_load_timeout: float = 600.0) -> None:
    """End of init: packs loaded (the snapshot's point), then nothing open that a restore would share."""
    if service is not None:
        # Without DOCFN_EAGER_LOAD nothing is loading yet: load now, or every restore would fetch.
        service.start_eager_load()  # a no-op while one runs or once one succeeded
    if service is not None and not service.wait_eager_load(eager_load_timeout):
        log.warning("eager model load still running at snapshot time; restored containers finish it")
    drop_connections(service)
    _log_state("before_snapshot", service)


def after_restore(service: Any) -> None:
    """First thing in each restored container: its own connections, credentials and random state.
    A snapshot taken unready (a pack refused or unreachable during init) loads again here, in the
    background, with the restored container's own connections; until then ``/readyz`` says why."""
    reseed_randomness()
    drop_connections(service)
    if service is not None and not service.ready:
        service.start_eager_load()  # a no-op while one runs
    _log_state("after_restore", service)


def _log_state(hook: str, service: Any) -> None:
    """The hook's log line: ready or not, and if not, the reason ``/readyz`` gives (a warning)."""
    if service is None:
        log.info("snapstart", extra={"fields": {"hook": hook, "ready": False}})
        return
    readiness = service.readiness()
    fields: dict[str, Any] = {"hook": hook, "ready": bool(service.ready)}
    errors = {name: task["error"] for name, task in readiness["tasks"].items() if task["error"]}
    if readiness.get("error") or errors:
        fields["error"] = readiness.get("error") or "; ".join(errors.values())
        log.warning("snapstart", extra={"fields": fields})
        return
    log.info("snapstart", extra={"fields": fields})


def register(before: Callable[[], None], after: Callable[[], None]) -> bool:
    """Hand the hooks to ``snapshot_restore_py`` (which awslambdaric runs); False without it (Knative)."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(before)
    register_after_restore(after)
    return True
