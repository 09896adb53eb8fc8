"""``docfn``: run tasks in-process, serve the HTTP API, and manage model packs."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from ...core.errors import DocfnError
from ...core.malloc_policy import configure_malloc
from ...core.settings import ALL_TASKS
from . import export_web, models, run, serve
from .render import OUTPUT_SUFFIXES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="docfn", description="Serverless document-understanding functions.")
    sub = parser.add_subparsers(dest="command", required=True)
    run.add_parser(sub, ALL_TASKS, tuple(OUTPUT_SUFFIXES))
    serve.add_parser(sub)
    models.add_parser(sub)
    export_web.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Ordinary mistakes (a bad option, an unknown task or pack, a tampered pack, a missing folder or
    bucket) end with one line on stderr and status 2, like argparse's own usage errors; a traceback
    is left for what is really a bug."""
    configure_malloc()  # before `serve` starts any thread
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DocfnError as exc:
        return _refuse(exc.message)
    except ValidationError as exc:  # a DOCFN_* setting (or --tasks) the settings object refuses
        return _refuse("; ".join(_setting_problem(error) for error in exc.errors()))


def _setting_problem(error: object) -> str:
    assert isinstance(error, dict)
    field = ".".join(str(part) for part in error.get("loc", ()))
    return f"DOCFN_{field.upper()}: {error.get('msg', 'invalid')}"


def _refuse(message: str) -> int:
    print("docfn: " + " ".join(message.split()), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
