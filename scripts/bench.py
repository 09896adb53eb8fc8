#!/usr/bin/env python3
"""docfn's benchmarks, one section at a time: speed, accuracy and memory, side by side with peers.

    scripts/bench.py SECTION [--quick] [--out DIR] [section options]
    scripts/bench.py SECTION --help

Every section writes a JSON and a Markdown report to docs/benchmarks/ (``--out``) that names the
exact command which made it. ``--quick`` is a section's smoke form (fewest pages and runs, seconds to
a minute) and writes to .docfn/bench-quick/ unless ``--out`` says otherwise, so it never overwrites
a measured report. Runs under the checkout's .venv (scripts/setup --dev) when this interpreter has no
docfn. The sections live in scripts/benchmarks/, one module each, over benchmarks/harness.py.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def use_project_venv() -> None:
    """Re-run under .venv/bin/python when this interpreter cannot import docfn, so the command as
    the docs spell it (``scripts/bench.py ocr``) works from a fresh clone after scripts/setup --dev."""
    venv_python = ROOT / ".venv" / "bin" / "python"
    if importlib.util.find_spec("docfn") is None and venv_python.is_file():
        os.execv(venv_python, [str(venv_python), __file__, *sys.argv[1:]])


def main(argv: list[str]) -> int:
    use_project_venv()
    from docfn.core.malloc_policy import configure_malloc

    # As docfn's entry points do, before any thread: what a section measures in-process (docfn's
    # pages, its peers' beside them, the throughput's ideal) runs under the function's own malloc.
    configure_malloc()
    from benchmarks import SECTIONS

    listing = "\n".join(f"  {name:<15} {what}" for name, what in SECTIONS.items())
    top = argparse.ArgumentParser(
        prog="scripts/bench.py",
        description=__doc__,
        epilog=f"sections (report names in brackets):\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("section", choices=list(SECTIONS), metavar="SECTION")
    top.add_argument("options", nargs=argparse.REMAINDER, help="the section's options (SECTION --help)")
    chosen = top.parse_args(argv)

    from benchmarks import harness

    module = importlib.import_module(f"benchmarks.{chosen.section}")
    parser = argparse.ArgumentParser(
        prog=f"scripts/bench.py {chosen.section}",
        description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="the smoke form: fewest pages and runs")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"report folder (default: {harness.OUT.relative_to(ROOT)};"
        f" with --quick {harness.QUICK_OUT.relative_to(ROOT)})",
    )
    module.add_arguments(parser)
    args = parser.parse_args(chosen.options)
    if args.out is None:
        args.out = harness.QUICK_OUT if args.quick else harness.OUT
    harness.set_command(argv)
    return module.run(args) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
