"""OCR in the browser: per-page time in headless Chromium (the page at ``/``, "read in this browser",
the OCR pack on onnxruntime-web's WASM) beside the server's time for the same pages, and the bytes a
first visit downloads (budget: <= 20 MB compressed, pack included).

One docfn server (ocr) and one Chromium page; per devset page, the browser reads it and then the
server reads it (POST /v1/ocr), interleaved, so both see the same machine load. The browser's first
read also fetches and verifies the pack and creates the sessions: reported apart, as is the
server's first request (on half a page, so no devset page hits the server's result cache).
"read" is the page's own measure of the pipeline (decode excluded); "wall" is click to result. The
bytes are every response the first visit got, as served (the function does not compress) and
gzip-compressed (level 6, what a static host or CDN with compression would send).
Writes browser_ocr.{json,md}.
"""

from __future__ import annotations

import argparse
import gzip
import io
import statistics
from datetime import datetime
from typing import Any

import httpx
from PIL import Image

from benchmarks import harness
from docfn.core.textmetrics import cer
from docfn.packs.catalog import DEFAULT_PACKS
from docfn.tooling.build import build_packs
from docfn_testkit import paths
from docfn_testkit.browser import chromium, matched_lines, read_in_browser

BUDGET_BYTES = 20_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_devset_arguments(parser)
    harness.add_store_argument(parser)


def run(args: argparse.Namespace) -> int:
    store = harness.model_store(args)
    build_packs([DEFAULT_PACKS["ocr"]], store)
    ids = harness.devset_ids(args)
    pages = [args.devset / f"{page_id}.png" for page_id in ids]
    load_before = harness.load_average()[0]
    server = harness.docfn_server({"DOCFN_MODEL_STORE": str(store), "DOCFN_TASKS": "ocr"})
    rows: list[dict[str, Any]] = []
    try:
        with chromium() as browser, httpx.Client(base_url=server.url, timeout=600) as client:
            page = browser.new_page()
            bodies: dict[str, int] = {}
            compressed: dict[str, int] = {}

            def note(response: Any) -> None:
                if response.url.startswith(("blob:", "data:")):
                    return
                body = response.body()
                bodies[response.url] = len(body)
                compressed[response.url] = len(gzip.compress(body, compresslevel=6))

            page.on("response", note)
            page.goto(server.url + "/")
            first = read_in_browser(page, pages[0])
            page.remove_listener("response", note)
            if first.state != "done":
                raise RuntimeError(f"the browser could not read {pages[0].name}: {first.status}")
            # The server's first request on a page of its own (the sample page's top half; the sample
            # page is a devset page): every devset page must miss the server's result cache.
            _, server_first = harness.timed(lambda: _server_read(client, _warm_up_page()))
            for path in pages:
                read = read_in_browser(page, path)
                if read.result is None:
                    raise RuntimeError(f"the browser could not read {path.name}: {read.status}")
                served, server_seconds = harness.timed(
                    lambda path=path: _server_read(client, path.read_bytes())
                )
                truth = path.with_suffix(".txt").read_text(encoding="utf-8")
                browser_page, server_page = read.result["result"]["pages"][0], served["result"]["pages"][0]
                browser_text = browser_page["text"]
                rows.append(
                    {
                        "page": path.stem,
                        "browser_read_s": round(read.result["read_ms"] / 1000, 3),
                        "browser_wall_s": round(read.seconds, 3),
                        "browser_detect_s": round(browser_page["timings_ms"]["detect"] / 1000, 3),
                        "browser_recognise_s": round(browser_page["timings_ms"]["recognise"] / 1000, 3),
                        "server_s": round(server_seconds, 3),
                        "ratio": round(read.result["read_ms"] / 1000 / server_seconds, 2),
                        "browser_cer": round(cer(browser_text, truth), 4),
                        "server_cer": round(cer(server_page["text"], truth), 4),
                        "browser_vs_server_cer": round(cer(browser_text, server_page["text"]), 4),
                        "server_lines": len(server_page["lines"]),
                        "lines_iou_0_9": matched_lines(server_page["lines"], browser_page["lines"], 0.9),
                        "threads": read.result["threads"],
                    }
                )
    finally:
        server.stop()
    first_visit = {
        "files": {url.replace(server.url, ""): size for url, size in sorted(bodies.items())},
        "bytes": sum(bodies.values()),
        "gzip_bytes": sum(compressed.values()),
        "budget_bytes": BUDGET_BYTES,
    }
    first_visit["within_budget"] = first_visit["gzip_bytes"] <= BUDGET_BYTES
    summary = {
        key: round(statistics.median(row[key] for row in rows), 3)
        for key in ("browser_read_s", "browser_wall_s", "server_s", "ratio")
    }
    lines = sum(row["server_lines"] for row in rows)
    parity = {
        "browser_cer": round(statistics.mean(row["browser_cer"] for row in rows), 4),
        "server_cer": round(statistics.mean(row["server_cer"] for row in rows), 4),
        "lines_iou_0_9_share": round(sum(row["lines_iou_0_9"] for row in rows) / max(lines, 1), 4),
    }
    report = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": harness.machine(),
        "pages": len(rows),
        "load_average_before": load_before,
        "load_average_after": harness.load_average()[0],
        "first_read": {"browser_wall_s": round(first.seconds, 3), "server_s": round(server_first, 3)},
        "median": summary,
        "parity": parity,
        "rows": rows,
        "first_visit": first_visit,
    }
    print(harness.write_report(args.out, "browser_ocr", report, _markdown(report)))
    return 0


def _warm_up_page() -> bytes:
    page = Image.open(paths.SAMPLE_PAGE)
    buffer = io.BytesIO()
    page.crop((0, 0, page.width, page.height // 2)).save(buffer, format="PNG")
    return buffer.getvalue()


def _server_read(client: httpx.Client, data: bytes) -> dict[str, Any]:
    response = client.post("/v1/ocr", content=data, headers={"content-type": "image/png"})
    response.raise_for_status()
    return response.json()


def _markdown(report: dict[str, Any]) -> str:
    visit, median, parity = report["first_visit"], report["median"], report["parity"]
    lines = [
        "# OCR in the browser (onnxruntime-web, WASM) beside the server\n",
        f"{report['pages']} devset pages, headless Chromium ({report['rows'][0]['threads']} WASM thread,"
        " SIMD; see docs/browser-ocr.md) and `docfn serve` (ocr) on the same machine, interleaved"
        f" page by page; load average {report['load_average_before']} before,"
        f" {report['load_average_after']} after (2 cores shared with other work: compare the ratio,"
        " not the seconds).\n",
        f"Median per page: browser {median['browser_read_s']} s (read; {median['browser_wall_s']} s"
        f" click to result), server {median['server_s']} s (HTTP round trip), browser/server"
        f" x{median['ratio']}. First read: browser {report['first_read']['browser_wall_s']} s (pack"
        f" fetched, sha256-checked, sessions created), server {report['first_read']['server_s']} s.\n",
        f"Parity, same pack: mean page CER browser {100 * parity['browser_cer']:.2f} %, server"
        f" {100 * parity['server_cer']:.2f} %; {100 * parity['lines_iou_0_9_share']:.1f} %"
        " of the server's lines have a browser line with IoU >= 0.9.\n",
        "| page | browser read s (detect + recognise) | browser wall s | server s | browser/server"
        " | browser CER | server CER | browser vs server CER | lines IoU>=0.9 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['page']} | {row['browser_read_s']} ({row['browser_detect_s']} +"
            f" {row['browser_recognise_s']}) | {row['browser_wall_s']} | {row['server_s']} |"
            f" x{row['ratio']} | {100 * row['browser_cer']:.2f}% | {100 * row['server_cer']:.2f}% |"
            f" {100 * row['browser_vs_server_cer']:.2f}% | {row['lines_iou_0_9']}/{row['server_lines']} |"
        )
    verdict = "within" if visit["within_budget"] else "OVER"
    lines += [
        "\n## First visit\n",
        f"{visit['bytes']:,} bytes as served, {visit['gzip_bytes']:,} gzip-compressed: {verdict} the"
        f" {visit['budget_bytes']:,}-byte budget (pack included).\n",
        "| file | bytes |",
        "|---|---|",
        *(f"| `{name}` | {size:,} |" for name, size in visit["files"].items()),
    ]
    return "\n".join(lines)
