"""``docfn run TASK FILE...``: a task in-process on local files, with the embedded defaults, or on a
remote function (``--url``) through :mod:`docfn.client`, rendered the same way."""

from __future__ import annotations

import argparse
import mimetypes
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import httpx

from ...client import Client
from ...core.documents import MEDIA_TYPES
from ...core.errors import BadOptions, DocfnError
from ...core.settings import Settings
from ...core.text_input import TEXT_TYPES
from ..wiring import build_service
from .render import (
    CLI_DEFAULT_OPTIONS,
    FORMAT_OPTIONS,
    output_stems,
    render,
    render_for_stdout,
    write_outputs,
)

# What a task's progress counts: pages, or for summarize the steps (pages parsed, then text parts).
_UNITS = {"summarize": "step"}
# One input file and the options in, the response body out (in-process or remote).
Runner = Callable[[Path, dict[str, str]], dict[str, Any]]


def add_parser(sub: argparse._SubParsersAction, tasks: tuple[str, ...], formats: tuple[str, ...]) -> None:  # type: ignore[type-arg]
    run = sub.add_parser("run", help="run a task in-process on files")
    run.add_argument("task", choices=tasks)
    run.add_argument("files", nargs="+", type=Path)
    run.add_argument("--pages", help="page ranges, e.g. 1-3,7")
    run.add_argument("--format", choices=formats, default="json")
    run.add_argument("--out", type=Path, help="write one output file per input into DIR")
    run.add_argument("--url", help="run on the docfn function at URL instead of in-process")
    run.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE", help="task option")
    run.set_defaults(func=cmd_run)


def progress_printer(stream: TextIO, unit: str = "page") -> Callable[[int, int], None] | None:
    """A progress printer for terminals (pages, or a long text's parts); silent when not a TTY."""
    if not stream.isatty():
        return None

    def show(done: int, total: int) -> None:
        stream.write(f"\rdocfn: {unit} {done}/{total}")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def content_type_of(path: Path) -> str | None:
    """A file name is no declaration: only image/PDF extensions are checked against the bytes, and
    text ones (.txt, .md, .json) say how a text task reads the file."""
    content_type = mimetypes.guess_type(path.name)[0]
    if path.suffix.lower() in (".md", ".markdown"):
        return "text/markdown"  # not known to every mimetypes table
    return content_type if content_type in (*MEDIA_TYPES.values(), *TEXT_TYPES) else None


def in_process(task: str) -> Runner | None:
    service = build_service(Settings(tasks=[task]))
    if task not in service.tasks:
        return None

    def run(path: Path, options: dict[str, str]) -> dict[str, Any]:
        data = path.read_bytes()
        outcome = service.run(
            task,
            data,
            content_type_of(path),
            options,
            on_page=progress_printer(sys.stderr, _UNITS.get(task, "page")),
        )
        return outcome.body()

    return run


def remote(task: str, url: str) -> Runner:
    client = Client(url)

    def run(path: Path, options: dict[str, str]) -> dict[str, Any]:
        return client.run(task, path, content_type=content_type_of(path), options=options).body()

    return run


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
    runner = remote(args.task, args.url) if args.url else in_process(args.task)
    if runner is None:
        print(f"docfn: task {args.task!r} is not implemented yet", file=sys.stderr)
        return 2
    if args.format in FORMAT_OPTIONS and args.task not in FORMAT_OPTIONS[args.format]:
        tasks = ", ".join(FORMAT_OPTIONS[args.format])
        print(f"docfn: --format {args.format} is for {tasks}, not {args.task}", file=sys.stderr)
        return 2
    options = {
        **CLI_DEFAULT_OPTIONS.get(args.task, {}),
        **FORMAT_OPTIONS.get(args.format, {}).get(args.task, {}),
        **parse_options(args.option),
    }
    if args.pages:
        options["pages"] = args.pages
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    status = 0
    several = len(args.files) > 1
    for path, stem in zip(args.files, output_stems(args.files), strict=True):
        try:
            body = runner(path, options)
        except DocfnError as exc:
            print(f"docfn: {path}: {exc.message} ({exc.code})", file=sys.stderr)
            status = 1
            continue
        except (OSError, httpx.HTTPError) as exc:
            print(f"docfn: {path}: {exc}", file=sys.stderr)
            status = 1
            continue
        if args.out:
            text = render(args.task, body, args.format)
            for target in write_outputs(args.task, body, text, args.out, stem, args.format):
                print(f"docfn: wrote {target}", file=sys.stderr)
        else:
            sys.stdout.write(render_for_stdout(args.task, body, args.format, path if several else None))
    return status
