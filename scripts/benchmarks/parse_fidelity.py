"""Parse fidelity against truths parse never reads, per page kind: the devset, real multi-page PDFs
and generated pages, in one run.

Pages and their truth:
- the devset (tests/data/devset: PNG renderings of TeX Live documentation pages): each page's text
  as its source PDF's layer printed it (parse sees only the pixels);
- Debian's documentation PDFs (``libtasn1-doc``: the 36-page Libtasn1 manual, texinfo;
  ``shared-mime-info``: its DocBook specification), installed with apt when missing (``--install``):
  poppler's ``pdftotext -layout`` of each page (poppler-utils), not pdfium, whose layer parse reads;
- generated pages (``docfn_testkit.genpages``: groff ``ms`` documents, a manual page, listings,
  displayed ``eqn`` formulas and ``tbl`` tables ruled, framed and borderless), each as its
  born-digital PDF and as its 150-dpi page image: truth ``pdftotext -layout`` of the PDF; tables are
  also scored by TEDS (``table-recognition-metric``: tree-edit distance over rows, cells, spans and
  cell text; TEDS-S the structure alone) against the cells the tables were typeset from.

Per page, warm, in one process and interleaved (timings drift on shared machines):
- ``ocr`` with ``mode=ocr`` (pixels), ``mode=txt`` (the text layer) and ``mode=auto`` (PDFs only);
- ``parse`` with ``mode=auto`` and (PDFs) ``mode=ocr``.
Metrics: character F1 (order-insensitive) and CER (NFKC, whitespace removed) of parse's Markdown
(markup stripped: what users read) and of its content list, beside plain OCR's on the same page;
``missing``: the share of the letters and digits ``ocr`` reads that parse's Markdown lacks (parse's
own OCR step: ``mode=auto`` on images, ``mode=ocr`` on PDFs); reading order (of the truth's lines of
12+ characters found verbatim in the output, the share of consecutive pairs that come in the truth's
order); tables found (and, on the devset, present: hand-labelled from the page images); seconds per
page. Writes parse_fidelity.{json,md}; ``--quick``: one devset page, the first page of each PDF and
two generated pages.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from table_recognition_metric import TEDS

from benchmarks import harness
from benchmarks.harness import PDFS
from benchmarks.parse import plain_text
from docfn.adapters.wiring import build_service
from docfn.core.documents import DecodeLimits, Document
from docfn.core.settings import Settings
from docfn.core.textmetrics import cer, char_f1, dehyphenated, missing_share, normalise
from docfn.service.hosted_task import HostedTask
from docfn.service.service import DocService
from docfn_testkit import genpages
from docfn_testkit.markdown import rendered

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
    truth_tables: list[str] = field(default_factory=list)  # HTML of the tables typeset on the page


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


def pdftotext(path: Path, page: int) -> str:
    """Poppler's ``pdftotext -layout`` of one page (1-based): a reader parse never uses."""
    return subprocess.run(
        ["pdftotext", "-layout", "-f", str(page), "-l", str(page), str(path), "-"],
        capture_output=True,
        check=True,
    ).stdout.decode()


def pdf_pages(kind: str, path: Path) -> list[BenchPage]:
    import pypdfium2 as pdfium

    data = path.read_bytes()
    document = pdfium.PdfDocument(data)
    count = len(document)
    document.close()
    return [
        BenchPage(kind, f"{path.stem} p{index + 1}", data, "pdf", index, pdftotext(path, index + 1), None)
        for index in range(count)
    ]


def generated_pages(dpi: float) -> list[BenchPage]:
    """Each generated page twice: its born-digital PDF, and its page image (no text layer)."""
    pages = []
    for page in genpages.pages():
        truth = genpages.pdftotext(page.pdf)
        tables = [genpages.truth_html(rows) for rows in page.tables]
        pages.append(
            BenchPage(
                f"generated {page.kind}, PDF", page.name, page.pdf, "pdf", 0, truth, len(tables), tables
            )
        )
        png = genpages.page_png(page.pdf, dpi)
        pages.append(
            BenchPage(f"generated {page.kind}, image", page.name, png, "png", 0, truth, len(tables), tables)
        )
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


_TEDS = TEDS()
_TEDS_S = TEDS(structure_only=True)


def _document(table_html: str) -> str:
    return f"<html><body>{table_html}</body></html>"


def teds(found: list[str], truth: list[str]) -> dict[str, float] | None:
    """Mean TEDS and TEDS-S of the page's tables against the typeset ones, in order (a table parse
    did not find scores 0); None when the page has no known tables."""
    if not truth:
        return None
    pairs = list(itertools.zip_longest(found, truth, fillvalue=""))[: len(truth)]
    full = [_TEDS(_document(f), _document(t)) if f else 0.0 for f, t in pairs]
    structure = [_TEDS_S(_document(f), _document(t)) if f else 0.0 for f, t in pairs]
    return {"teds": round(statistics.mean(full), 4), "teds_s": round(statistics.mean(structure), 4)}


def run_page(run: Runner, page: BenchPage) -> dict[str, Any]:
    row: dict[str, Any] = {"kind": page.kind, "page": page.name, "tables_present": page.tables_present}
    modes = ("ocr", "txt", "auto") if page.fmt == "pdf" else ("ocr",)
    ocr_text = ""
    for mode in modes:
        result, seconds = run("ocr", page, {"mode": mode})
        row[f"ocr_{mode}"] = {**measure(result["text"], page.truth, seconds)}
        row[f"ocr_{mode}"]["source"] = result["pages"][0]["text_source"]
        if mode == "ocr":
            ocr_text = result["text"]
    for mode in ("auto", "ocr") if page.fmt == "pdf" else ("auto",):
        result, seconds = run("parse", page, {"mode": mode})
        blocks = result["content_list"]
        kept = content_text(blocks)
        row[f"parse_{mode}"] = {
            **measure(plain_text(result["markdown"]), page.truth, seconds),
            # The Markdown as a viewer shows it: without its comments (furniture, a figure's words).
            "shown_char_f1": round(
                char_f1(dehyphenated(plain_text(rendered(result["markdown"]))), dehyphenated(page.truth)), 4
            ),
            "content_cer": round(cer(kept, dehyphenated(page.truth)), 4),
            "content_char_f1": round(char_f1(kept, dehyphenated(page.truth)), 4),
            "source": result["pages"][0]["text_source"],
            "tables": sum(1 for b in blocks if b["type"] == "table"),
            "lists": sum(1 for b in blocks if b["type"] == "list"),
            "headings": sum(1 for b in blocks if b.get("text_level")),
            "teds": teds([b["table_body"] for b in blocks if b["type"] == "table"], page.truth_tables),
        }
        if result["pages"][0]["text_source"] == "ocr":  # parse's own OCR step read this page
            row[f"parse_{mode}"]["missing"] = round(
                missing_share(ocr_text, plain_text(result["markdown"])), 4
            )
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


def _mean(values: list[float], digits: int = 4) -> float | None:
    return round(statistics.mean(values), digits) if values else None


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per page kind and pipeline: means of CER, F1, order and seconds; the OCR letters parse's
    Markdown lacks (mean and worst page); TEDS; table counts; the issue's targets met or not."""
    out: dict[str, Any] = {}
    for kind in dict.fromkeys(r["kind"] for r in rows):
        group = [r for r in rows if r["kind"] == kind]
        entry: dict[str, Any] = {"pages": len(group)}
        for key in PIPELINES:
            measured = [r[key] for r in group if key in r]
            if not measured:
                continue
            entry[key] = {
                "seconds_per_page": _mean([m["seconds"] for m in measured], 3),
                "cer": _mean([m["cer"] for m in measured]),
                "char_f1": _mean([m["char_f1"] for m in measured]),
                "order": _mean([m["order"] for m in measured if m["order"] is not None], 3),
            }
            if key.startswith("parse"):
                missing = [m["missing"] for m in measured if "missing" in m]
                tables = [m["teds"] for m in measured if m["teds"] is not None]
                entry[key] |= {
                    "content_char_f1": _mean([m["content_char_f1"] for m in measured]),
                    "shown_char_f1": _mean([m["shown_char_f1"] for m in measured]),
                    "content_cer": _mean([m["content_cer"] for m in measured]),
                    "tables_found": sum(m["tables"] for m in measured),
                    "lists": sum(m["lists"] for m in measured),
                    "missing_mean": _mean(missing),
                    "missing_max": max(missing) if missing else None,
                    "teds": _mean([t["teds"] for t in tables]),
                    "teds_s": _mean([t["teds_s"] for t in tables]),
                }
        present = [r["tables_present"] for r in group]
        entry["tables_present"] = None if None in present else sum(present)
        parse, ocr = entry["parse_auto"], entry["ocr_ocr"]
        entry["target_markdown_vs_ocr"] = parse["char_f1"] >= ocr["char_f1"]
        if "ocr_txt" in entry:  # a PDF kind: the text layer's pages against the independent truth
            entry["target_text_layer"] = parse["char_f1"] >= 0.995
        for key in ("parse_auto", "parse_ocr"):
            if entry.get(key, {}).get("missing_max") is not None:
                entry["target_missing"] = entry[key]["missing_max"] <= 0.01
        out[kind] = entry
    return out


def markdown_report(report: dict[str, Any]) -> str:
    def cell(entry: dict[str, Any], key: str, field: str, digits: int = 3) -> str:
        value = entry.get(key, {}).get(field)
        return "–" if value is None else f"{value:.{digits}f}"

    def met(entry: dict[str, Any], target: str) -> str:
        return {True: "met", False: "**missed**", None: "–"}[entry.get(target)]

    def missing(entry: dict[str, Any]) -> str:
        key = "parse_ocr" if "parse_ocr" in entry else "parse_auto"
        if entry[key].get("missing_max") is None:
            return "–"
        return f"{100 * entry[key]['missing_mean']:.2f} / {100 * entry[key]['missing_max']:.2f}"

    lines = [
        "# parse fidelity: devset, real PDFs and generated pages, against truths parse does not read",
        "",
        f"Packs `{report['packs']}`, {report['machine']['cpus']} CPUs (shared, load average"
        f" {report['machine'].get('load_average')}), warm, one process, pipelines interleaved per page."
        " Truth: the devset's text files (each page's source PDF layer; parse sees only the PNG); for"
        " every PDF, poppler's `pdftotext -layout` (parse reads pdfium's layer, never poppler's);"
        " generated pages (groff) as PDF and as 150-dpi image share their PDF's `pdftotext` truth, and"
        " their tables are scored by TEDS against the cells they were typeset from. CER and char F1"
        " after NFKC with whitespace removed and line-end hyphenation undone in every text and the"
        " truth. Markdown: parse's Markdown source with the markup stripped (what users, search and"
        " language models read), its comments' words included (page furniture, a figure's words);"
        " Markdown shown: the same without the comments (what a Markdown viewer shows); content:"
        " every word of its content list.",
        "",
        "## Per page kind",
        "",
        "| kind | pages | F1 ocr | F1 parse Markdown | F1 parse Markdown shown | F1 parse content"
        " | Markdown >= OCR"
        " | PDF layer >= 0.995 | OCR letters missing from Markdown, % mean / worst | <= 1 % | TEDS"
        " | TEDS-S | tables found / present | order ocr | order parse | s/page ocr | s/page parse |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, e in report["summary"].items():
        present = "?" if e["tables_present"] is None else str(e["tables_present"])
        lines.append(
            f"| {kind} | {e['pages']} | {cell(e, 'ocr_ocr', 'char_f1')}"
            f" | {cell(e, 'parse_auto', 'char_f1')} | {cell(e, 'parse_auto', 'shown_char_f1')}"
            f" | {cell(e, 'parse_auto', 'content_char_f1')}"
            f" | {met(e, 'target_markdown_vs_ocr')} | {met(e, 'target_text_layer')}"
            f" | {missing(e)} | {met(e, 'target_missing')}"
            f" | {cell(e, 'parse_auto', 'teds')} | {cell(e, 'parse_auto', 'teds_s')}"
            f" | {e['parse_auto']['tables_found']} / {present}"
            f" | {cell(e, 'ocr_ocr', 'order', 2)} | {cell(e, 'parse_auto', 'order', 2)}"
            f" | {cell(e, 'ocr_ocr', 'seconds_per_page', 2)}"
            f" | {cell(e, 'parse_auto', 'seconds_per_page', 2)} |"
        )
    lines += [
        "",
        "`ocr` is plain OCR of the pixels (`mode=ocr`); `parse` is the default (`mode=auto`: a PDF's"
        " trusted text layer, else OCR). Missing: of the letters and digits `ocr` reads on the page,"
        " the share parse's Markdown lacks when parse's own OCR step read the page (`mode=auto` on"
        " images, `mode=ocr` on PDFs). On PDF kinds TEDS is parse `mode=auto`'s (cells from the layer);"
        " `parse mode=ocr`'s is in the next table.",
        "",
        "## Text layer vs OCR on the PDFs",
        "",
        "| kind | pipeline | s/page | CER | char F1 | content F1 | order | TEDS | TEDS-S |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, e in report["summary"].items():
        for key in PIPELINES:
            if key in e and "ocr_txt" in e:
                lines.append(
                    f"| {kind} | {key.replace('_', ' mode=')} | {cell(e, key, 'seconds_per_page', 2)}"
                    f" | {cell(e, key, 'cer')} | {cell(e, key, 'char_f1')}"
                    f" | {cell(e, key, 'content_char_f1')}"
                    f" | {cell(e, key, 'order', 2)} | {cell(e, key, 'teds')} | {cell(e, key, 'teds_s')} |"
                )
    lines += ["", "## Per page", ""]
    lines.append(
        "| page | kind | F1 ocr | F1 parse Markdown | F1 parse content | CER parse | missing % | TEDS"
        " | parse source |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for r in report["pages"]:
        p = r["parse_auto"]
        gone = r.get("parse_ocr", p).get("missing")
        score = "–" if p["teds"] is None else f"{p['teds']['teds']:.3f}"
        lines.append(
            f"| {r['page']} | {r['kind']} | {r['ocr_ocr']['char_f1']:.3f} | {p['char_f1']:.3f}"
            f" | {p['content_char_f1']:.3f} | {p['cer']:.3f} | {'–' if gone is None else f'{100 * gone:.2f}'}"
            f" | {score} | {p['source']} |"
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
    if shutil.which("pdftotext") is None:
        missing.append("poppler-utils")
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
    generated = generated_pages(settings.pdf_dpi)
    pages += generated[:2] if args.quick else generated
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
