"""Parse: Markdown fidelity, headings, tables and speed on the devset.

For every page, in one process and interleaved (timings drift on shared machines), warm:
- ``parse`` with OCR once per page, lines assigned to layout regions (``ocr_mode=page``, default),
- ``parse`` with OCR per region crop at native scale (``ocr_mode=region``),
- plain ``ocr`` page text as the baseline the Markdown should not fall below.
Text fidelity compares the Markdown with markup stripped (headings' #, list dashes, HTML tags,
image links) against the page's PDF text layer: CER after NFKC + whitespace removal, and the
order-insensitive character F1. Writes parse.{json,md}; ``--quick``: one page.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import statistics
import time
from typing import Any

from benchmarks import harness
from docfn.adapters.wiring import build_service
from docfn.core.documents import DecodeLimits, Document
from docfn.core.settings import Settings
from docfn.core.textmetrics import cer, char_f1
from docfn.service.hosted_task import HostedTask

MODES = ("page", "region")


def plain_text(markdown: str) -> str:
    """The words of the Markdown, without its markup."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", markdown)  # image links
    # Table HTML (only its tags: "<type definitions>" in a manual's text is text).
    text = re.sub(r"</?(?:table|thead|tbody|tr|td|th)\b[^>]*>", " ", text)
    text = re.sub(r"^#+\s", "", text, flags=re.MULTILINE)
    # A bullet item shows as a bullet: "- " is how Markdown writes the "•" a reader sees.
    text = re.sub(r"^- ", "• ", text, flags=re.MULTILINE)
    text = re.sub(r"^```$", "", text, flags=re.MULTILINE)  # code fences
    # Comments (page furniture, a figure's words): their words are the Markdown's, the markup is not.
    text = re.sub(r"<!-- [a-z ]+: (.*?) -->", r"\1", text, flags=re.DOTALL)
    # Table cells are HTML-escaped ("&lt;" shows as "<").
    text = re.sub(r"&(?:lt|gt|amp|quot|#x27|#39);", lambda m: html.unescape(m.group(0)), text)
    return text.replace("$$", " ")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_devset_arguments(parser)
    harness.add_store_argument(parser)


def run(args: argparse.Namespace) -> int:
    settings = Settings(tasks=["parse", "ocr"], **({"model_store": args.store} if args.store else {}))
    service = build_service(settings)
    parse, ocr = service.task("parse"), service.task("ocr")
    parse.load()
    ocr.load()
    limits = DecodeLimits(settings.max_pixels, settings.max_pages, settings.pdf_dpi)
    ids = harness.devset_ids(args)
    manifest = [e for e in json.loads((args.devset / "manifest.json").read_text()) if e["id"] in ids]

    def doc(entry: dict[str, Any]) -> Document:
        return Document((args.devset / f"{entry['id']}.png").read_bytes(), "png", limits)

    def predict(hosted: HostedTask, entry: dict[str, Any], raw: dict[str, str]) -> dict[str, Any]:
        """One page through a task, uncached (the service's cache would answer repeats)."""
        options = service.validate_options(hosted.name, raw)
        page = doc(entry).render(0)
        return hosted.task.combine([hosted.task.predict_page(page, options)], options)

    # Warm-up: first inference pays for ONNX Runtime's lazy initialisation.
    predict(parse, manifest[0], {})
    rows = []
    for entry in manifest:
        truth = (args.devset / f"{entry['id']}.txt").read_text(encoding="utf-8")
        row: dict[str, Any] = {"id": entry["id"], "category": entry["category"]}
        for mode in MODES:
            start = time.perf_counter()
            result = predict(parse, entry, {"ocr_mode": mode})
            seconds = time.perf_counter() - start
            text = plain_text(result["markdown"])
            blocks = result["content_list"]
            row[mode] = {
                "seconds": round(seconds, 3),
                "cer": round(cer(text, truth), 4),
                "char_f1": round(char_f1(text, truth), 4),
                "headings": sum(1 for b in blocks if b.get("text_level")),
                "tables": sum(1 for b in blocks if b["type"] == "table"),
                "figures": sum(1 for b in blocks if b["type"] == "image"),
                "equations": sum(1 for b in blocks if b["type"] == "equation"),
                "blocks": len(blocks),
            }
        start = time.perf_counter()
        result = predict(ocr, entry, {})
        seconds = time.perf_counter() - start
        row["ocr"] = {
            "seconds": round(seconds, 3),
            "cer": round(cer(result["text"], truth), 4),
            "char_f1": round(char_f1(result["text"], truth), 4),
        }
        rows.append(row)
        print(entry["id"], {k: row[k] for k in (*MODES, "ocr")}, flush=True)

    def overall(key: str) -> dict[str, float]:
        out = {
            "seconds_per_page": round(statistics.mean(r[key]["seconds"] for r in rows), 3),
            "cer_mean": round(statistics.mean(r[key]["cer"] for r in rows), 4),
            "char_f1_mean": round(statistics.mean(r[key]["char_f1"] for r in rows), 4),
        }
        if key in MODES:
            out["headings"] = sum(r[key]["headings"] for r in rows)
            out["tables"] = sum(r[key]["tables"] for r in rows)
        return out

    report = {
        "machine": harness.machine(),
        "packs": parse.version_id,
        "pages": rows,
        "overall": {key: overall(key) for key in (*MODES, "ocr")},
    }
    lines = [
        "# parse on the devset",
        "",
        f"Packs `{parse.version_id}`, {report['machine']['cpus']} CPUs, warm, one process, interleaved."
        " CER/F1: NFKC, whitespace removed, Markdown markup stripped, against the PDF text layer.",
        "",
        "| page | category | s (page) | CER (page) | F1 (page) | headings | tables"
        " | s (region) | CER (region) | F1 (region) | s (ocr) | CER (ocr) | F1 (ocr) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p, g, o = r["page"], r["region"], r["ocr"]
        lines.append(
            f"| {r['id']} | {r['category']} | {p['seconds']:.2f} | {p['cer']:.3f} | {p['char_f1']:.3f}"
            f" | {p['headings']} | {p['tables']} | {g['seconds']:.2f} | {g['cer']:.3f} | {g['char_f1']:.3f}"
            f" | {o['seconds']:.2f} | {o['cer']:.3f} | {o['char_f1']:.3f} |"
        )
    lines.append("")
    lines.append("| pipeline | s/page | mean CER | mean char F1 | headings | tables |")
    lines.append("|---|---|---|---|---|---|")
    for key, label in (
        ("page", "parse, OCR per page"),
        ("region", "parse, OCR per region"),
        ("ocr", "ocr only"),
    ):
        o = report["overall"][key]
        lines.append(
            f"| {label} | {o['seconds_per_page']:.2f} | {o['cer_mean']:.3f} | {o['char_f1_mean']:.3f}"
            f" | {o.get('headings', '–')} | {o.get('tables', '–')} |"
        )
    harness.write_report(args.out, "parse", report, "\n".join(lines))
    print(json.dumps(report["overall"], indent=2))
    return 0
