"""Table recognisers side by side on real table images with known cells: which method for which table.

Tables: the devset's two tables (mathtools' framed box of commands, page 001; ragged2e's booktabs
table, page 003), cropped from the page images and labelled by eye; and three tables typeset by groff
``tbl`` (plain, with rowspan + colspan header cells, with a colspan in the body), each drawn three
ways: ``ruled`` (every cell boxed), ``framed`` (outer frame and a header rule only), ``borderless``.

Methods: ``classic`` (ruling lines, else how the OCR boxes line up), ``slanet`` (SLANet-plus
structure, OCR pieces into its cells by overlap) and ``auto`` (the choice the numbers below made:
see ``docfn.tasks.table.table_recognizers.AutoTableRecognizer``). Same OCR pack for all.

Per table: structure match (every cell's row, column and spans equal the truth's), cells exact (share
of truth cells whose slot holds the same text, whitespace and case aside), cell text accuracy (mean of
1 - CER per truth cell, floored at 0), seconds per table (warm; ratio to classic side by side).
Writes table.{json,md}; ``--quick``: one devset table and one typeset table, ruled.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks import harness
from docfn.core.textmetrics import cer, normalise
from docfn.packs.catalog import RECIPES
from docfn.packs.manifest import verify_pack
from docfn.tasks.ocr.engine import OcrEngine
from docfn.tasks.table.slanet import SlanetStructure
from docfn.tasks.table.structure import Table
from docfn.tasks.table.table_recognizers import TableRecognizer, table_recognizer
from docfn.tooling.build import build_pack
from docfn_testkit.paths import DEVSET
from docfn_testkit.tablegen import DEVSET_TABLES, SAMPLE_TABLES, TableCell, render_table, slots

OCR_PACK, STRUCTURE_PACK = "ocr-ppocrv6-tiny", "table-slanet-plus"
METHODS = ("classic", "slanet", "auto")
STYLES = ("ruled", "framed", "borderless")


def bench_images(
    devset: Path, quick: bool = False
) -> list[tuple[str, str, np.ndarray, list[list[TableCell]]]]:
    """(name, kind, image, truth rows) of every benchmark table (``quick``: the first devset table
    and the first typeset table, ruled)."""
    out = []
    for name, table in list(DEVSET_TABLES.items())[: 1 if quick else None]:
        page = Image.open(devset / f"{table.page}.png").convert("RGB")
        out.append((name, name.split("-", 1)[1], np.asarray(page.crop(table.box)), table.rows))
    for name, rows in list(SAMPLE_TABLES.items())[: 1 if quick else None]:
        for style in STYLES[: 1 if quick else None]:
            out.append((f"{name}-{style}", style, np.asarray(render_table(rows, style)), rows))
    return out


def score(table: Table, truth: list[list[TableCell]]) -> dict[str, float]:
    expected = {slot: (cell.rowspan, cell.colspan, cell.text) for slot, cell in slots(truth).items()}
    got = {(c.row, c.col): (c.rowspan, c.colspan, c.text) for c in table.cells}
    structure = {s: v[:2] for s, v in expected.items()} == {s: v[:2] for s, v in got.items()}
    exact, accuracy = [], []
    for slot, (_, _, text) in expected.items():
        found = normalise(got.get(slot, (0, 0, ""))[2])
        exact.append(float(found == normalise(text)))
        accuracy.append(max(0.0, 1.0 - cer(found, normalise(text))))
    return {
        "structure": float(structure),
        "cells_exact": statistics.mean(exact),
        "cell_accuracy": statistics.mean(accuracy),
    }


def measure(recognizers: dict[str, TableRecognizer], devset: Path, quick: bool) -> list[dict[str, Any]]:
    rows = []
    for name, kind, image, truth in bench_images(devset, quick):
        for method, recognizer in recognizers.items():
            recognizer(image)  # warm: first-call allocations are not the method's cost
            table, seconds = harness.timed(lambda r=recognizer, i=image: r(i))
            rows.append(
                {"table": name, "kind": kind, "method": method, "chose": table.method, "seconds": seconds}
                | score(table, truth)
            )
    return rows


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for kind in dict.fromkeys(r["kind"] for r in rows):
        base = statistics.mean(r["seconds"] for r in rows if r["kind"] == kind and r["method"] == "classic")
        for method in METHODS:
            mine = [r for r in rows if r["kind"] == kind and r["method"] == method]
            seconds = statistics.mean(r["seconds"] for r in mine)
            out.append(
                {
                    "kind": kind,
                    "method": method,
                    "tables": len(mine),
                    "structure": statistics.mean(r["structure"] for r in mine),
                    "cells_exact": statistics.mean(r["cells_exact"] for r in mine),
                    "cell_accuracy": statistics.mean(r["cell_accuracy"] for r in mine),
                    "seconds": seconds,
                    "time_vs_classic": seconds / base,
                }
            )
    return out


def markdown_report(report: dict[str, Any]) -> str:
    lines = [
        "# table recognisers",
        "",
        f"Packs `{report['packs']}`, {report['machine']['cpus']} CPUs (shared), warm, one process."
        " Structure: every cell's row, column and spans as in the truth. Cells exact: share of truth"
        " cells with the same text (NFKC, whitespace removed). Cell accuracy: mean 1 - CER per cell."
        " Time: seconds per table and its ratio to classic on the same tables.",
        "",
        "## Per table kind",
        "",
        "| kind | method | tables | structure | cells exact | cell accuracy | s/table | time vs classic |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in report["summary"]:
        lines.append(
            f"| {s['kind']} | {s['method']} | {s['tables']} | {s['structure']:.2f} | {s['cells_exact']:.2f}"
            f" | {s['cell_accuracy']:.3f} | {s['seconds']:.2f} | {s['time_vs_classic']:.2f} |"
        )
    lines += ["", "## Per table", "", "| table | method | chose | structure | cells exact | cell accuracy |"]
    lines.append("|---|---|---|---|---|---|")
    for r in report["tables"]:
        lines.append(
            f"| {r['table']} | {r['method']} | {r['chose']} | {r['structure']:.0f} | {r['cells_exact']:.2f}"
            f" | {r['cell_accuracy']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devset", type=Path, default=DEVSET, help="the pages of its tables")
    harness.add_store_argument(parser)


def run(args: argparse.Namespace) -> int:
    store = harness.model_store(args)
    ocr_dir, structure_dir = (build_pack(RECIPES[name], store) for name in (OCR_PACK, STRUCTURE_PACK))
    ocr = OcrEngine(ocr_dir, verify_pack(ocr_dir))
    structure = SlanetStructure(structure_dir, verify_pack(structure_dir))
    recognizers = {
        "classic": table_recognizer("classic", ocr=ocr),
        "slanet": table_recognizer("slanet", ocr=ocr, structure=structure),
        "auto": table_recognizer("auto", ocr=ocr, structure=structure),
    }
    rows = measure(recognizers, args.devset, args.quick)
    report = {
        "packs": "+".join(f"{n}@{RECIPES[n].version}" for n in (OCR_PACK, STRUCTURE_PACK)),
        "machine": harness.machine(),
        "summary": summary(rows),
        "tables": rows,
    }
    print(harness.write_report(args.out, "table", report, markdown_report(report)))
    return 0
