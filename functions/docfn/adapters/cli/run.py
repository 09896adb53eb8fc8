"""``docfn run TASK FILE...``: a task in-process on local files, with the embedded defaults."""

from __future__ import annotations

import argparse
import mimetypes
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ...core.documents import MEDIA_TYPES
from ...core.errors import BadOptions, DocfnError
from ...core.settings import Settings
from ..wiring import build_service
from .render import CLI_DEFAULT_OPTIONS, render, write_outputs


def add_parser(sub: argparse._SubParsersAction, tasks: tuple[str, ...], formats: tuple[str, ...]) -> None:  # type: ignore[type-arg]
    run = sub.add_parser("run", help="run a task in-process on files")
    run.add_argument("task", choices=tasks)
    run.add_argument("files", nargs="+", type=Path)
    run.add_argument("--pages", help="page ranges, e.g. 1-3,7")
    run.add_argument("--format", choices=formats, default="json")
    run.add_argument("--out", type=Path, help="write one output file per input into DIR")
    run.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE", help="task option")
    run.set_defaults(func=cmd_run)


def progress_printer(stream: TextIO) -> Callable[[int, int], None] | None:
    """A page-progress printer for terminals; silent when stderr is not a TTY."""
    if not stream.isatty():
        return None

    def show(done: int, total: int) -> None:
        stream.write(f"\rdocfn: page {done}/{total}")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def parse_options(items: list[str]) -> dict[str, str]:
    """``-o KEY=VALUE`` pairs; anything else is a usage mistake (status 2, see ``main``)."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadOptions(f"-o expects KEY=VALUE (e.g. -o angle_cls=true), got {item!r}")
        options[key.strip()] = value
    return options


def cmd_run(args: argparse.Namespace) -> int:
    service = build_service(Settings(tasks=[args.task]))
    if args.task not in service.tasks:
        print(f"docfn: task {args.task!r} is not implemented yet", file=sys.stderr)
        return 2
    options = {**CLI_DEFAULT_OPTIONS.get(args.task, {}), **parse_options(args.option)}
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
            outcome = service.run(
                args.task, data, content_type, options, on_page=progress_printer(sys.stderr)
            )
        except DocfnError as exc:
            print(f"docfn: {path}: {exc.message} ({exc.code})", file=sys.stderr)
            status = 1
            continue
        except OSError as exc:
            print(f"docfn: {path}: {exc}", file=sys.stderr)
            status = 1
            continue
        body = outcome.body()
        text = render(args.task, body, args.format)
        if args.out:
            for target in write_outputs(args.task, body, text, args.out, path.stem, args.format):
                print(f"docfn: wrote {target}", file=sys.stderr)
        else:
            sys.stdout.write(text)
    return status
