"""Parse fidelity against text-layer truth, per page type: the devset and real multi-page PDFs.

Pages: the devset (tests/data/devset: PNG renderings of TeX Live documentation pages, with their PDF text
layers as truth) and Debian's documentation PDFs (``libtasn1-doc``: the 36-page Libtasn1 manual,
texinfo; ``shared-mime-info``: its DocBook specification), installed with apt when missing
(``--install``); their truth is each page's text layer as pdfium reads it.

Per page, warm, in one process and interleaved (timings drift on shared machines):
- ``ocr`` with ``mode=ocr`` (pixels), ``mode=txt`` (the text layer) and ``mode=auto`` (PDFs only);
- ``parse`` with ``mode=auto`` and (PDFs) ``mode=ocr``: its Markdown with markup stripped.
Metrics: character F1 (order-insensitive) and CER (NFKC, whitespace removed), reading order (of the
truth's lines of 12+ characters found verbatim in the output, the share of consecutive pairs that
come in the truth's order), tables found (and, on the devset, present: hand-labelled from the page
images), seconds per page. Writes parse_fidelity.{json,md}; ``--quick``: one devset page and the
first page of each PDF.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.harness import PDFS
from benchmarks.parse import plain_text
from docfn.adapters.wiring import build_service
from docfn.core.documents import DecodeLimits, Document
from docfn.core.settings import Settings
from docfn.core.textmetrics import cer, char_f1, dehyphenated, normalise
from docfn.service.hosted_task import HostedTask
from docfn.service.service import DocService

# Tables on the devset pages, counted by eye on the page images: 001 and 002 each have one ruled
# two-column box of commands, 003 the "parameters" table; 007's frames are code listings.
DEVSET_TABLES = {"001": 1, "002": 1, "003": 1}
MIN_ORDER_LINE = 12


@dataclass(frozen=True)
class BenchPage:
    kind: str  # page type: the devset's category, or the PDF's kind
    name: str
    data: bytes
    fmt: str
    index: int
    truth: str
    tables_present: int | None  # None: not labelled


def install(packages: list[str]) -> None:
    sudo = [] if shutil.which("sudo") is None else ["sudo"]
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=True
    )


def devset_pages(devset: Path, ids: list[str]) -> list[BenchPage]:
    manifest = [e for e in json.loads((devset / "manifest.json").read_text()) if e["id"] in ids]
    return [
        BenchPage(
            kind=entry["category"],
            name=entry["id"],
            data=(devset / f"{entry['id']}.png").read_bytes(),
            fmt="png",
            index=0,
            truth=(devset / f"{entry['id']}.txt").read_text(encoding="utf-8"),
            tables_present=DEVSET_TABLES.get(entry["id"], 0),
        )
        for entry in manifest
    ]


def pdf_pages(kind: str, path: Path) -> list[BenchPage]:
    import pypdfium2 as pdfium

    data = path.read_bytes()
    document = pdfium.PdfDocument(data)
    pages = []
    for index in range(len(document)):
        textpage = document[index].get_textpage()
        truth = textpage.get_text_range()
        textpage.close()
        pages.append(BenchPage(kind, f"{path.stem} p{index + 1}", data, "pdf", index, truth, None))
    document.close()
    return pages


def reading_order(text: str, truth: str) -> float | None:
    """Of the truth's lines found verbatim (normalised) in ``text``, the share of consecutive pairs
    found in the truth's order (None: fewer than two found)."""
    flat = normalise(text)
    positions = []
    for line in truth.splitlines():
        needle = normalise(line)
        if len(needle) >= MIN_ORDER_LINE and (found := flat.find(needle)) >= 0:
            positions.append(found)
    if len(positions) < 2:
        return None
    return sum(a < b for a, b in itertools.pairwise(positions)) / (len(positions) - 1)


class Runner:
    def __init__(self, service: DocService, limits: DecodeLimits) -> None:
        self.service = service
        self.limits = limits

    def __call__(self, task: str, page: BenchPage, raw: dict[str, str]) -> tuple[dict[str, Any], float]:
        """One page through a task, uncached (the service's cache would answer repeats), timed
        from rendering on (a text layer is read while rendering)."""
        hosted: HostedTask = self.service.task(task)
        options = self.service.validate_options(task, raw)
        document = Document(page.data, page.fmt, self.limits)
        start = time.perf_counter()
        rendered = document.render(page.index, text_layer=hosted.task.needs_text_layer(options))
        result = hosted.task.combine([hosted.task.predict_page(rendered, options)], options)
        seconds = time.perf_counter() - start
        document.close()
        return result, seconds


def measure(text: str, truth: str, seconds: float) -> dict[str, Any]:
    text, truth = dehyphenated(text), dehyphenated(truth)
    return {
        "seconds": round(seconds, 3),
        "cer": round(cer(text, truth), 4),
        "char_f1": round(char_f1(text, truth), 4),
        "order": reading_order(text, truth),
    }


def run_page(run: Runner, page: BenchPage) -> dict[str, Any]:
    row: dict[str, Any] = {"kind": page.kind, "page": page.name, "tables_present": page.tables_present}
    modes = ("ocr", "txt", "auto") if page.fmt == "pdf" else ("ocr",)
    for mode in modes:
        result, seconds = run("ocr", page, {"mode": mode})
        row[f"ocr_{mode}"] = {**measure(result["text"], page.truth, seconds)}
        row[f"ocr_{mode}"]["source"] = result["pages"][0]["text_source"]
    for mode in ("auto", "ocr") if page.fmt == "pdf" else ("auto",):
        result, seconds = run("parse", page, {"mode": mode})
        blocks = result["content_list"]
        kept = content_text(blocks)
        row[f"parse_{mode}"] = {
            **measure(plain_text(result["markdown"]), page.truth, seconds),
            "content_cer": round(cer(kept, dehyphenated(page.truth)), 4),
            "content_char_f1": round(char_f1(kept, dehyphenated(page.truth)), 4),
            "source": result["pages"][0]["text_source"],
            "tables": sum(1 for b in blocks if b["type"] == "table"),
            "lists": sum(1 for b in blocks if b["type"] == "list"),
            "headings": sum(1 for b in blocks if b.get("text_level")),
        }
    return row


def content_text(blocks: list[dict[str, Any]]) -> str:
    """Every word the content list keeps, page furniture included (the Markdown leaves out running
    heads and page numbers by design; this says whether parse lost any text)."""
    parts: list[str] = []
    for block in blocks:
        parts += [str(block.get(key) or "") for key in ("text", "code_body", "image_text")]
        parts += block.get("list_items", []) + block.get("image_caption", []) + block.get("code_caption", [])
        parts += block.get("table_caption", [])
        if block["type"] == "table":
            parts.append(plain_text(block["table_body"]))
    return "\n".join(p for p in parts if p)


PIPELINES = ("ocr_ocr", "ocr_txt", "ocr_auto", "parse_auto", "parse_ocr")


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per page type and pipeline: means of CER, F1, order and seconds; table counts."""
    out: dict[str, Any] = {}
    for kind in dict.fromkeys(r["kind"] for r in rows):
        group = [r for r in rows if r["kind"] == kind]
        entry: dict[str, Any] = {"pages": len(group)}
        for key in PIPELINES:
            measured = [r[key] for r in group if key in r]
            if not measured:
                continue
            orders = [m["order"] for m in measured if m["order"] is not None]
            entry[key] = {
                "seconds_per_page": round(statistics.mean(m["seconds"] for m in measured), 3),
                "cer": round(statistics.mean(m["cer"] for m in measured), 4),
                "char_f1": round(statistics.mean(m["char_f1"] for m in measured), 4),
                "order": round(statistics.mean(orders), 3) if orders else None,
            }
            if key.startswith("parse"):
                entry[key]["content_char_f1"] = round(
                    statistics.mean(m["content_char_f1"] for m in measured), 4
                )
                entry[key]["content_cer"] = round(statistics.mean(m["content_cer"] for m in measured), 4)
                entry[key]["tables_found"] = sum(m["tables"] for m in measured)
                entry[key]["lists"] = sum(m["lists"] for m in measured)
        present = [r["tables_present"] for r in group]
        entry["tables_present"] = None if None in present else sum(present)
        out[kind] = entry
    return out


def markdown_report(report: dict[str, Any]) -> str:
    def cell(entry: dict[str, Any], key: str, field: str, digits: int = 3) -> str:
        value = entry.get(key, {}).get(field)
        return "–" if value is None else f"{value:.{digits}f}"

    lines = [
        "# parse fidelity: devset and real PDFs",
        "",
        f"Packs `{report['packs']}`, {report['machine']['cpus']} CPUs (shared), warm, one process,"
        " pipelines interleaved per page. Truth: the devset's text-layer files; for the PDFs each"
        " page's own text layer (pdfium). CER and char F1 after NFKC with whitespace removed and line-end"
        " hyphenation undone in every text and the truth; parse"
        " is its Markdown with the markup stripped. Order: share of consecutive truth lines (12+"
        " characters, found verbatim) that come in the truth's order.",
        "",
        "## Per page type",
        "",
        "| type | pages | F1 ocr | F1 parse (content) | F1 parse (Markdown) | CER ocr | CER parse (Markdown)"
        " | order ocr | order parse | tables found / present | lists |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, e in report["summary"].items():
        present = "?" if e["tables_present"] is None else str(e["tables_present"])
        lines.append(
            f"| {kind} | {e['pages']} | {cell(e, 'ocr_ocr', 'char_f1')}"
            f" | {cell(e, 'parse_auto', 'content_char_f1')} | {cell(e, 'parse_auto', 'char_f1')}"
            f" | {cell(e, 'ocr_ocr', 'cer')} | {cell(e, 'parse_auto', 'cer')}"
            f" | {cell(e, 'ocr_ocr', 'order', 2)} | {cell(e, 'parse_auto', 'order', 2)}"
            f" | {e['parse_auto']['tables_found']} / {present} | {e['parse_auto']['lists']} |"
        )
    lines += [
        "",
        "`ocr` is plain OCR of the pixels (`mode=ocr`); `parse` is the default (`mode=auto`). F1 parse"
        " (content): every word of the content list, running heads and page numbers included;"
        " (Markdown): the Markdown, which leaves those out by design.",
        "",
        "## Text layer vs OCR on the PDFs",
        "",
        "| type | pipeline | s/page | CER | char F1 | order |",
        "|---|---|---|---|---|---|",
    ]
    for kind, e in report["summary"].items():
        for key in PIPELINES:
            if key in e and "ocr_txt" in e:
                lines.append(
                    f"| {kind} | {key.replace('_', ' mode=')} | {cell(e, key, 'seconds_per_page', 2)}"
                    f" | {cell(e, key, 'cer')} | {cell(e, key, 'char_f1')} | {cell(e, key, 'order', 2)} |"
                )
    lines += ["", "## Per page", ""]
    lines.append(
        "| page | type | F1 ocr | F1 parse (content) | F1 parse (Markdown) | CER parse | parse source |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    for r in report["pages"]:
        p = r["parse_auto"]
        lines.append(
            f"| {r['page']} | {r['kind']} | {r['ocr_ocr']['char_f1']:.3f} | {p['content_char_f1']:.3f}"
            f" | {p['char_f1']:.3f} | {p['cer']:.3f} | {p['source']} |"
        )
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_devset_arguments(parser)
    harness.add_store_argument(parser)
    parser.add_argument(
        "--install", action="store_true", help="apt-get install the PDFs' packages if missing"
    )
    parser.add_argument(
        "--max-pdf-pages", type=int, default=0, help="first N pages of each PDF (0: all; --quick: 1)"
    )


def run(args: argparse.Namespace) -> int:
    missing = [package for package, path in PDFS.values() if not path.exists()]
    if missing and args.install:
        install(missing)
    pages = devset_pages(args.devset, harness.devset_ids(args))
    max_pdf_pages = 1 if args.quick and not args.max_pdf_pages else args.max_pdf_pages
    for kind, (_, path) in PDFS.items():
        if path.exists():
            found = pdf_pages(kind, path)
            pages += found[:max_pdf_pages] if max_pdf_pages else found
        else:
            print(f"skipping {path}: not installed (--install)", flush=True)

    settings = Settings(tasks=["parse", "ocr"], **({"model_store": args.store} if args.store else {}))
    service = build_service(settings)
    service.load_all()
    runner = Runner(service, DecodeLimits(settings.max_pixels, settings.max_pages, settings.pdf_dpi))
    run_page(runner, pages[0])  # warm-up: the first inference pays ONNX Runtime's lazy initialisation
    rows = []
    for page in pages:
        rows.append(run_page(runner, page))
        print(page.name, {k: (v["char_f1"], v["seconds"]) for k, v in rows[-1].items() if k in PIPELINES})

    report = {
        "machine": harness.machine(),
        "packs": service.task("parse").version_id,
        "summary": summary(rows),
        "pages": rows,
    }
    harness.write_report(args.out, "parse_fidelity", report, markdown_report(report))
    print(json.dumps(report["summary"], indent=2))
    return 0
