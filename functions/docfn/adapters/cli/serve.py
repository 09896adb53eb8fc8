"""``docfn serve``: the HTTP API under uvicorn (locally, and as the Knative container's command)."""

from __future__ import annotations

import argparse
import os
import signal


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser("serve", help="serve the HTTP API (honours $PORT)")
    serve.add_argument("--tasks", help="comma-separated tasks to serve (default: DOCFN_TASKS or all)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--drain-seconds", type=int, default=300, help="graceful shutdown limit on SIGTERM")
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from ...core import logs
    from ...core.settings import Settings
    from ..wiring import build_service

    if args.tasks:
        os.environ["DOCFN_TASKS"] = args.tasks
    port = args.port or int(os.environ.get("PORT", "8080"))
    settings = Settings()
    # The JSON log from the start (create_app configures it again, the same): what building the
    # service logs, such as an unknown DOCFN_* variable, is one JSON line like every other.
    logs.configure(settings.log_level, emf=settings.metrics_emf)
    service = build_service(settings)
    if settings.eager_load:
        # Started before the web stack is imported, so the packs download meanwhile (cold start).
        service.start_eager_load()

    import uvicorn

    from ..http.app import create_app

    app = create_app(settings, service=service)
    # uvicorn drains on SIGTERM: it stops accepting and lets in-flight requests finish. Afterwards it
    # re-raises the signal through the handler that was installed before it; a no-op handler makes
    # a drained shutdown a clean exit (status 0), which is what Knative/Kubernetes expect.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        app, host=args.host, port=port, log_level="warning", timeout_graceful_shutdown=args.drain_seconds
    )
    return 0
