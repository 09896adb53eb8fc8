"""The text layer's trust check and its cost: which source ``mode=auto`` picks on PDFs of every
kind, and what it costs beside ``mode=ocr`` on born-digital pages, side by side in one run.

Trust: every page of the committed fixtures (tests/data/text_layers: groff born-digital, tesseract's
searchable scan, wrong ToUnicode maps, a mixed PDF) and of the Debian documentation PDFs (the
Libtasn1 manual, texinfo; the shared-mime-info spec, DocBook; installed with apt when missing,
``--install``) through ``ocr`` with ``mode=auto``: its ``text_source`` and reason, and the sampled
CER of the layer against the recogniser, the number the threshold is set from.

Speed: the first ``--pages`` (10) pages of the Libtasn1 manual, warm, one process, each page through
``ocr`` and ``parse`` with ``mode=ocr``, ``mode=auto`` and (the floor: rendering and reading the
layer) ``mode=txt``, interleaved page by page for ``--rounds`` rounds. Reports the ratio of total
seconds, auto / ocr, per task, against the target 0.2, with the load average before and after.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.harness import PDFS
from docfn.adapters.wiring import build_service
from docfn.core.documents import DecodeLimits, Document
from docfn.core.settings import Settings
from docfn.service.service import DocService
from docfn_testkit.paths import TEXT_LAYERS

FIXTURES = TEXT_LAYERS
TARGET_RATIO = 0.2
MODES = ("ocr", "auto", "txt")
_CER = re.compile(r"CER (\d\.\d+) on")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_store_argument(parser)
    parser.add_argument("--pages", type=int, default=10, help="born-digital pages timed (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="timing rounds (default 2)")
    parser.add_argument("--install", action="store_true", help="apt-get install the documentation PDFs")


def _install(packages: list[str]) -> None:
    sudo = [] if shutil.which("sudo") is None else ["sudo"]
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=True
    )


class Runner:
    def __init__(self, service: DocService) -> None:
        self.service = service
        self.limits = DecodeLimits(max_pixels=60_000_000, max_pages=1000)

    def __call__(self, task: str, data: bytes, index: int, mode: str) -> tuple[dict[str, Any], float]:
        """One page through ``task``, uncached, timed from rendering on (the layer is read there)."""
        loaded, _ = self.service.loaded(task)
        options = self.service.validate_options(task, {"mode": mode})
        document = Document(data, "pdf", self.limits)
        try:
            start = time.perf_counter()
            page = document.render(index, text_layer=loaded.needs_text_layer(options))
            result = loaded.combine([loaded.predict_page(page, options)], options)
            return result, time.perf_counter() - start
        finally:
            document.close()


def _pages(data: bytes) -> int:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        return len(document)
    finally:
        document.close()


def trust(run: Runner, pdfs: dict[str, Path]) -> list[dict[str, Any]]:
    rows = []
    for name, path in pdfs.items():
        data = path.read_bytes()
        for index in range(_pages(data)):
            result, seconds = run("ocr", data, index, "auto")
            page = result["pages"][0]
            found = _CER.search(page["text_source_reason"])
            rows.append(
                {
                    "pdf": name,
                    "page": index + 1,
                    "source": page["text_source"],
                    "reason": page["text_source_reason"],
                    "sample_cer": float(found.group(1)) if found else None,
                    "seconds": round(seconds, 3),
                }
            )
    return rows


def speed(run: Runner, data: bytes, pages: int, rounds: int) -> dict[str, Any]:
    runners = {
        f"{task} {mode}": (lambda index, task=task, mode=mode: run(task, data, index, mode)[1])
        for task in ("ocr", "parse")
        for mode in MODES
    }
    load_before = harness.load_average()
    samples = harness.interleaved(runners, list(range(pages)), rounds=rounds)
    load_after = harness.load_average()
    totals = {key: sum(s.seconds for per_page in runs for s in per_page) for key, runs in samples.items()}
    count = pages * rounds
    ratios = {task: totals[f"{task} auto"] / totals[f"{task} ocr"] for task in ("ocr", "parse")}
    per_page = {
        task: [
            sum(s.seconds for s in samples[f"{task} auto"][i])
            / sum(s.seconds for s in samples[f"{task} ocr"][i])
            for i in range(pages)
        ]
        for task in ("ocr", "parse")
    }
    return {
        "pages": pages,
        "rounds": rounds,
        "seconds_per_page": {key: round(total / count, 3) for key, total in totals.items()},
        "ratio_auto_to_ocr": {task: round(value, 3) for task, value in ratios.items()},
        "ratio_txt_to_ocr": {
            task: round(totals[f"{task} txt"] / totals[f"{task} ocr"], 3) for task in ratios
        },
        "ratio_per_page": {
            task: {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}
            for task, values in per_page.items()
        },
        "target": TARGET_RATIO,
        "met": {task: value <= TARGET_RATIO for task, value in ratios.items()},
        "load_average": {"before": load_before, "after": load_after},
    }


def markdown(report: dict[str, Any]) -> str:
    speed_part, rows = report["speed"], report["trust"]
    per = speed_part["seconds_per_page"]
    lines = [
        "# Text layer: trust and cost",
        "",
        f"Packs `{report['packs']}`, {report['machine']['cpus']} CPUs (shared), warm, one process.",
        "",
        f"## Cost on born-digital pages (the Libtasn1 manual, pages 1-{speed_part['pages']},"
        f" {speed_part['rounds']} rounds interleaved)",
        "",
        "| task | mode=ocr s/page | mode=auto s/page | mode=txt s/page | auto / ocr | per page median, max"
        " | txt / ocr (no check) | target | |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task in ("ocr", "parse"):
        ratio = speed_part["ratio_auto_to_ocr"][task]
        page = speed_part["ratio_per_page"][task]
        lines.append(
            f"| {task} | {per[f'{task} ocr']:.3f} | {per[f'{task} auto']:.3f} | {per[f'{task} txt']:.3f}"
            f" | {ratio:.3f}x | {page['median']:.2f}x, {page['max']:.2f}x"
            f" | {speed_part['ratio_txt_to_ocr'][task]:.3f}x | <= {TARGET_RATIO}x"
            f" | {'met' if speed_part['met'][task] else 'missed'} |"
        )
    load = speed_part["load_average"]
    lines += [
        "",
        f"Load average (1, 5, 15 min) before {load['before']}, after {load['after']}. `auto / ocr`:"
        " total seconds over every page and round (the target's measure); `txt / ocr`: the layer"
        " taken unchecked, the floor of any check (parse runs its layout model on every page in"
        " every mode).",
        "",
        "## Source per page (`ocr`, `mode=auto`)",
        "",
        "| pdf | page | text_source | sampled CER | reason |",
        "|---|---|---|---|---|",
    ]
    fixtures = [r for r in rows if r["pdf"].endswith(".pdf")]
    for row in fixtures:
        cer = "" if row["sample_cer"] is None else f"{row['sample_cer']:.2f}"
        lines.append(f"| {row['pdf']} | {row['page']} | {row['source']} | {cer} | {row['reason']} |")
    lines += [
        "",
        "Real documentation PDFs, every page:",
        "",
        "| pdf | pages | sources | sampled CER max |",
        "|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["pdf"] for r in rows if r not in fixtures):
        group = [r for r in rows if r["pdf"] == name]
        sources = {s: sum(r["source"] == s for r in group) for s in dict.fromkeys(r["source"] for r in group)}
        cers = [r["sample_cer"] for r in group if r["sample_cer"] is not None]
        said = ", ".join(f"{s} {n}" for s, n in sources.items())
        lines.append(
            f"| {name} | {len(group)} | {said} | {max(cers):.2f} |"
            if cers
            else f"| {name} | {len(group)} | {said} | |"
        )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    if args.install:
        _install([package for package, path in PDFS.values() if not path.is_file()])
    manual = PDFS["manual (texinfo)"][1]
    if not manual.is_file():
        raise SystemExit(f"{manual} is missing: run with --install (apt-get install libtasn1-doc)")
    service = build_service(Settings(tasks=["ocr", "parse"], model_store=harness.model_store(args)))
    runner = Runner(service)
    pdfs = {p.name: p for p in sorted(FIXTURES.glob("*.pdf"))}
    if not args.quick:
        pdfs |= {name: path for name, (_, path) in PDFS.items() if path.is_file()}
    pages = 2 if args.quick else args.pages
    report = {
        "packs": "+".join(sorted({service.task("parse").version_id, service.task("ocr").version_id})),
        "machine": harness.machine(),
        "speed": speed(runner, manual.read_bytes(), pages, 1 if args.quick else args.rounds),
        "trust": trust(runner, pdfs),
    }
    print(harness.write_report(args.out, "text_layer", report, markdown(report)))
    return 0
