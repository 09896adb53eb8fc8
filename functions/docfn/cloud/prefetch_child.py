"""The prefetch process (``docfn.cloud.prefetch``): ``python -m docfn.cloud.prefetch_child`` fetches and
verifies, in parallel, every ``s3://`` pack the function's tasks need into the local store, exactly
as the function's own load would (``fetch_pack_from_s3``), and exits 0 when all arrived. A failure is
logged and left to the function's own load, which meets it again and reports it."""

from __future__ import annotations

import os
import sys


def prefetch() -> int:
    """Fetch and verify the tasks' ``s3://`` packs (in parallel); 0 when all arrived."""
    import logging
    import time
    from concurrent.futures import ThreadPoolExecutor

    from ..core import logs
    from ..core.settings import get_settings
    from ..packs.refs import parse_pack_uri
    from ..tasks.registry import default_pack_settings
    from .s3_packs import fetch_pack_from_s3

    started = time.perf_counter()
    settings = get_settings()
    logs.configure(settings.log_level)
    log = logging.getLogger("docfn.prefetch")
    needed = {name for task in settings.tasks for name in default_pack_settings(task)}
    refs = [
        parse_pack_uri(uri, name)
        for name in sorted(needed)
        if (uri := os.environ.get(name, "")).startswith("s3://")
    ]

    def fetch(ref: object) -> bool:
        try:
            fetch_pack_from_s3(ref, settings.model_store, endpoint_url=settings.s3_endpoint_url)  # type: ignore[arg-type]
            return True
        except Exception as exc:  # the function's own load meets it again and reports it
            log.warning("prefetch of %s failed: %s", getattr(ref, "uri", ref), exc)
            return False

    with ThreadPoolExecutor(max_workers=max(1, len(refs))) as pool:
        done = list(pool.map(fetch, refs))
    log.info(
        "prefetch",
        extra={
            "fields": {
                "packs": len(refs),
                "ok": sum(done),
                "seconds": round(time.perf_counter() - started, 3),
            }
        },
    )
    return 0 if all(done) else 1


if __name__ == "__main__":
    sys.exit(prefetch())
