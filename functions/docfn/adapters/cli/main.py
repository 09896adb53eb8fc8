"""``docfn``: run tasks in-process, serve the HTTP API, and manage model packs."""

from __future__ import annotations

import argparse
import sys

from ...core.settings import ALL_TASKS
from . import models, run, serve
from .render import OUTPUT_SUFFIXES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="docfn", description="Serverless document-understanding functions.")
    sub = parser.add_subparsers(dest="command", required=True)
    run.add_parser(sub, ALL_TASKS, tuple(OUTPUT_SUFFIXES))
    serve.add_parser(sub)
    models.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
