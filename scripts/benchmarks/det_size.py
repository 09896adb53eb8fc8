"""The OCR detector's input size on whole pages: CER and s/page per longest side, on the devset.

One engine per size over the same verified pack files (the detector config is the only difference),
run interleaved page by page, warm (docfn.tooling.evaluate.measure). Sizes: full size (the page's
smallest side is already above ``limit_side_len`` 736, so nothing is resized: pack version 1) and
the page downscaled to a longest side of 1280, 1024 and 960 px (version 2 ships 1024). CER per
devset category beside the corpus CER. Writes det_size.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from datetime import datetime
from typing import Any

from benchmarks import harness
from docfn.packs.catalog import DEFAULT_PACKS
from docfn.packs.manifest import verify_pack
from docfn.tasks.ocr.engine import OcrEngine
from docfn.tooling.build import build_packs
from docfn.tooling.evaluate import load_pages, measure

SIZES = {"full size (v1)": 0, "1280": 1280, "1024 (v2)": 1024, "960": 960}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_devset_arguments(parser)
    harness.add_store_argument(parser)


def run(args: argparse.Namespace) -> int:
    (pack_dir,) = build_packs([DEFAULT_PACKS["ocr"]], harness.model_store(args))
    manifest = verify_pack(pack_dir)
    categories = {
        str(e["id"]): e["category"] for e in json.loads((args.devset / "manifest.json").read_text())
    }
    pages = load_pages(args.devset, harness.devset_ids(args))
    engines = {}
    for name, side in SIZES.items():
        engine = OcrEngine(pack_dir, manifest)
        engine.detector.config = dataclasses.replace(engine.detector.config, max_side_len=side)
        engines[name] = engine
    load_before = harness.load_average()[0]
    measured = measure(engines, pages)
    rows: dict[str, Any] = {}
    for name, result in measured.items():
        by_category: dict[str, list[float]] = {}
        for page_id, page_cer in result.per_page_cer.items():
            by_category.setdefault(categories[page_id], []).append(page_cer)
        rows[name] = {
            "cer": round(result.cer, 4),
            "s_per_page": round(result.s_per_page, 3),
            "mean_page_cer_by_category": {c: round(statistics.mean(v), 4) for c, v in by_category.items()},
        }
    full = rows["full size (v1)"]["s_per_page"]
    for row in rows.values():
        row["time_vs_full_size"] = round(row["s_per_page"] / full, 3)
    report = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": harness.machine(),
        "pack": manifest.pack_id,
        "pages": len(pages),
        "load_average_before": load_before,
        "load_average_after": harness.load_average()[0],
        "sizes": rows,
    }
    cats = list(next(iter(rows.values()))["mean_page_cer_by_category"])
    lines = [
        "# OCR detector input size on whole pages\n",
        f"{len(pages)} devset pages (150 dpi, 1241x1754), {manifest.pack_id}'s files, sizes interleaved "
        f"page by page, warm; load average {report['load_average_before']} before, "
        f"{report['load_average_after']} after. CER: NFKC, whitespace removed, corpus.\n",
        "| longest side | CER | s/page | time vs full size | " + " | ".join(cats) + " |",
        "|---|---|---|---|" + "---|" * len(cats),
    ]
    for name, row in rows.items():
        per = " | ".join(f"{100 * row['mean_page_cer_by_category'][c]:.2f}%" for c in cats)
        cells = f"{100 * row['cer']:.2f}% | {row['s_per_page']:.3f} | {row['time_vs_full_size']}"
        lines.append(f"| {name} | {cells} | {per} |")
    print(harness.write_report(args.out, "det_size", report, "\n".join(lines)))
    return 0
