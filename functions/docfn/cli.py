"""``docfn``: run tasks in-process, serve the HTTP API, and manage model packs."""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import signal
import sys
from pathlib import Path

from .core.errors import DocfnError
from .core.inputs import MEDIA_TYPES
from .core.settings import ALL_TASKS, Settings
from .tasks.base import OUTPUT_SUFFIXES

FORMATS = tuple(OUTPUT_SUFFIXES)


def _progress(stream) -> object:  # type: ignore[no-untyped-def]
    """A page-progress printer for terminals; silent when stderr is not a TTY."""
    if not stream.isatty():
        return None

    def show(done: int, total: int) -> None:
        stream.write(f"\rdocfn: page {done}/{total}")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def cmd_run(args: argparse.Namespace) -> int:
    from .core.service import DocService

    settings = Settings(tasks=[args.task])
    service = DocService(settings)
    if args.task not in service.tasks:
        print(f"docfn: task {args.task!r} is not implemented yet", file=sys.stderr)
        return 2
    options = {**service.task(args.task).cli_options, **dict(item.split("=", 1) for item in args.option)}
    if args.pages:
        options["pages"] = args.pages
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    status = 0
    for path in args.files:
        try:
            data = path.read_bytes()
            # A file name is no declaration: only image/PDF extensions are checked against the bytes.
            content_type = mimetypes.guess_type(path.name)[0]
            if content_type not in MEDIA_TYPES.values():
                content_type = None
            outcome = service.run(args.task, data, content_type, options, on_page=_progress(sys.stderr))
        except DocfnError as exc:
            print(f"docfn: {path}: {exc.message} ({exc.code})", file=sys.stderr)
            status = 1
            continue
        except OSError as exc:
            print(f"docfn: {path}: {exc}", file=sys.stderr)
            status = 1
            continue
        task = service.task(args.task)
        if args.format == "json":
            text = json.dumps(outcome.body(), ensure_ascii=False, indent=2) + "\n"
        else:
            text = task.render(outcome.result, args.format)
        if args.out:
            for target in task.write_outputs(outcome.result, text, args.out, path.stem, args.format):
                print(f"docfn: wrote {target}", file=sys.stderr)
        else:
            sys.stdout.write(text)
    return status


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    if args.tasks:
        os.environ["DOCFN_TASKS"] = args.tasks
    from .adapters.http import create_app

    port = args.port or int(os.environ.get("PORT", "8080"))
    app = create_app(Settings())
    # uvicorn drains on SIGTERM: it stops accepting and lets in-flight requests finish. Afterwards it
    # re-raises the signal through the handler that was installed before it; a no-op handler makes
    # a drained shutdown a clean exit (status 0), which is what Knative/Kubernetes expect.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        app, host=args.host, port=port, log_level="warning", timeout_graceful_shutdown=args.drain_seconds
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .packs import cli as packs_cli

    return packs_cli.main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="docfn", description="Serverless document-understanding functions.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a task in-process on files")
    run.add_argument("task", choices=ALL_TASKS)
    run.add_argument("files", nargs="+", type=Path)
    run.add_argument("--pages", help="page ranges, e.g. 1-3,7")
    run.add_argument("--format", choices=FORMATS, default="json")
    run.add_argument("--out", type=Path, help="write one output file per input into DIR")
    run.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE", help="task option")
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="serve the HTTP API (honours $PORT)")
    serve.add_argument("--tasks", help="comma-separated tasks to serve (default: DOCFN_TASKS or all)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--drain-seconds", type=int, default=300, help="graceful shutdown limit on SIGTERM")
    serve.set_defaults(func=cmd_serve)

    from .packs import cli as packs_cli

    packs_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
