"""OCR in the browser: per-page time in headless Chromium (the page at ``/``, "read in this browser",
the OCR pack on onnxruntime-web's WASM) beside the server's time for the same pages, and the bytes a
first visit downloads (budget: <= 20 MB compressed, pack included).

One docfn server (ocr) and two Chromium pages; per devset page, the page at ``/`` reads it (cross-origin
isolated, as served: WASM threads), the same page without its COOP/COEP headers reads it (stripped in
the browser: not isolated, one WASM thread), then the server reads it (POST /v1/ocr), interleaved,
so all three see the same machine load. The browser's first
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
            single = browser.new_page()
            single.route(server.url + "/", _without_isolation)
            single.goto(server.url + "/")
            if single.evaluate("crossOriginIsolated") or not page.evaluate("crossOriginIsolated"):
                raise RuntimeError("the page at / should be isolated, and the copy without headers not")
            single_first = read_in_browser(single, pages[0])
            if single_first.state != "done":
                raise RuntimeError(
                    f"the one-thread page could not read {pages[0].name}: {single_first.status}"
                )
            # The server's first request on a page of its own (the sample page's top half; the sample
            # page is a devset page): every devset page must miss the server's result cache.
            _, server_first = harness.timed(lambda: _server_read(client, _warm_up_page()))
            for path in pages:
                read = read_in_browser(page, path)
                if read.result is None:
                    raise RuntimeError(f"the browser could not read {path.name}: {read.status}")
                one = read_in_browser(single, path)
                if one.result is None:
                    raise RuntimeError(f"the one-thread page could not read {path.name}: {one.status}")
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
                        "cross_origin_isolated": read.result["cross_origin_isolated"],
                        "one_thread_read_s": round(one.result["read_ms"] / 1000, 3),
                        "one_thread_threads": one.result["threads"],
                        "threads_speedup": round(one.result["read_ms"] / read.result["read_ms"], 2),
                        "one_thread_ratio": round(one.result["read_ms"] / 1000 / server_seconds, 2),
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
        for key in (
            "browser_read_s",
            "browser_wall_s",
            "server_s",
            "ratio",
            "one_thread_read_s",
            "one_thread_ratio",
            "threads_speedup",
        )
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


def _without_isolation(route: Any) -> None:
    """The page at / as served, minus its COOP/COEP headers: not cross-origin isolated."""
    response = route.fetch()
    headers = {
        name: value
        for name, value in response.headers.items()
        if not name.lower().startswith("cross-origin-")
    }
    route.fulfill(response=response, headers=headers)


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
        f"{report['pages']} devset pages, headless Chromium and `docfn serve` (ocr) on the same machine,"
        f" interleaved page by page: the page at `/` as served (cross-origin isolated:"
        f" {report['rows'][0]['threads']} WASM threads, SIMD), the same page without its COOP/COEP headers"
        f" ({report['rows'][0]['one_thread_threads']} WASM thread), and the server; load average"
        f" {report['load_average_before']} before, {report['load_average_after']} after"
        f" ({report['machine'].get('cpus', '?')} cores shared with other work: compare the ratios, not"
        " the seconds). See docs/browser-ocr.md.\n",
        f"Median per page: browser {median['browser_read_s']} s with threads (read;"
        f" {median['browser_wall_s']} s click to result), {median['one_thread_read_s']} s on one thread,"
        f" server {median['server_s']} s (HTTP round trip). Browser/server x{median['ratio']} with"
        f" threads, x{median['one_thread_ratio']} on one thread; threads speed the browser up"
        f" x{median['threads_speedup']}. First read: browser {report['first_read']['browser_wall_s']} s"
        f" (pack fetched, sha256-checked, sessions created), server {report['first_read']['server_s']} s.\n",
        f"Parity, same pack: mean page CER browser {100 * parity['browser_cer']:.2f} %, server"
        f" {100 * parity['server_cer']:.2f} %; {100 * parity['lines_iou_0_9_share']:.1f} %"
        " of the server's lines have a browser line with IoU >= 0.9.\n",
        "| page | browser read s (detect + recognise) | browser wall s | one-thread read s | server s"
        " | browser/server | one thread/server | browser CER | server CER | browser vs server CER"
        " | lines IoU>=0.9 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['page']} | {row['browser_read_s']} ({row['browser_detect_s']} +"
            f" {row['browser_recognise_s']}) | {row['browser_wall_s']} | {row['one_thread_read_s']} |"
            f" {row['server_s']} | x{row['ratio']} | x{row['one_thread_ratio']} |"
            f" {100 * row['browser_cer']:.2f}% | {100 * row['server_cer']:.2f}% |"
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
