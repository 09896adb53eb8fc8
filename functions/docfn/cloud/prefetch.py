"""The pack fetch in a process of its own, started first thing in the Lambda entry point, so that it
can run on a second core while the function's own process imports (``DOCFN_PACK_PREFETCH=1``).

Everything a cold start does before its first inference is Python holding the GIL (the handler's
imports, the HTTP app's, boto3's import and client, the download's bookkeeping): a thread started
early moves nothing (tried: 3.23 vs 3.22 s, docs/image.md), a process can. :func:`start` reads only
``os.environ`` (the settings module alone costs a third of the handler's import), so it runs before
any heavy import; the child, ``python -m docfn.cloud.prefetch_child``, fetches and verifies every
``s3://`` pack the task needs into the local store through ``fetch_pack_from_s3``, the same code the
function's own load then runs: that load first waits for the child (:func:`wait`), finds the
verified copy and uses it (or, if the child failed, fetches itself and reports the error as ever).
Nothing here decides what is loaded or whether the function is ready.

Off by default: measured side by side (``scripts/bench.py image --compare``, docs/image.md), it
needs a second core the function's process is not using; on this shared machine, where no core is
idle, the extra process lengthened the cold start instead.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping

FALSE = ("", "0", "false", "no", "off")
# The longest a load waits for the prefetch process before fetching itself (boto3's own timeouts
# and retries end a stuck download well before).
WAIT_SECONDS = 300.0


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    return default if value is None else value.strip().lower() not in FALSE


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Prefetch when it is switched on, the function loads eagerly (Terraform sets that), and some
    pack is named by an ``s3://`` URI and not baked into the image."""
    env = os.environ if environ is None else environ
    if not _flag(env, "DOCFN_EAGER_LOAD", False) or not _flag(env, "DOCFN_PACK_PREFETCH", False):
        return False
    baked = env.get("DOCFN_BAKED_PACKS")
    for name, uri in env.items():
        if not (name.startswith("DOCFN_") and name.endswith("MODEL_URI") and uri.startswith("s3://")):
            continue
        # s3://BUCKET/models/NAME/VERSION: a pack baked into the image is not fetched at all.
        where = os.path.join(baked or "", *uri.rstrip("/").split("/")[-2:], "manifest.json")
        if not (baked and os.path.isfile(where)):
            return True
    return False


_child: subprocess.Popen[bytes] | None = None


def start() -> bool:
    """Start the prefetch process if :func:`wanted`; True if one was started. Never raises."""
    global _child
    if _child is not None or not wanted():
        return False
    try:
        _child = subprocess.Popen(
            [sys.executable, "-m", "docfn.cloud.prefetch_child"], stdin=subprocess.DEVNULL
        )
    except OSError:
        return False  # the function's own load fetches, as without prefetching
    # Reap it when it ends (waitpid releases the GIL), so no zombie outlives it.
    threading.Thread(target=_child.wait, name="docfn-prefetch-reaper", daemon=True).start()
    return True


def wait(timeout: float = WAIT_SECONDS) -> float:
    """Wait for the prefetch process, if one was started and still runs (at most ``timeout`` s:
    past that the caller fetches itself); the seconds waited."""
    if _child is None or _child.poll() is not None:
        return 0.0
    started = time.perf_counter()
    with contextlib.suppress(subprocess.TimeoutExpired):
        _child.wait(timeout)
    return time.perf_counter() - started
