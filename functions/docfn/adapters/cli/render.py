"""How the CLI shows results: ``text`` and ``md`` renderings per task, and the files ``--out`` writes.

Rendering is the CLI's, not the tasks': a task returns data; this decides how a person reads it.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...tasks.parse.blocks import to_text

# The CLI's output formats and the file suffix each is written with.
OUTPUT_SUFFIXES: dict[str, str] = {"json": ".json", "md": ".md", "text": ".txt", "chunks": ".jsonl"}
# Formats only some tasks have, and the options that make the task produce what they show.
FORMAT_OPTIONS: dict[str, dict[str, dict[str, str]]] = {"chunks": {"parse": {"chunks": "true"}}}
# Options the CLI adds unless the user gave them: parse embeds figure images so --out can write them.
CLI_DEFAULT_OPTIONS: dict[str, dict[str, str]] = {"parse": {"images": "base64"}}


def _ocr(result: dict[str, Any], fmt: str) -> str:
    if fmt == "md":
        return "\n\n".join(f"<!-- page {p['page']} -->\n\n{p['text']}" for p in result["pages"]) + "\n"
    return result["text"] + "\n"


def _layout(result: dict[str, Any], fmt: str) -> str:
    if fmt == "md":
        return _layout_markdown(result)
    lines = []
    for page in result["pages"]:
        lines.append(f"page {page['page']} ({page['width']}x{page['height']})")
        for r in page["regions"]:
            x0, y0, x1, y1 = (round(v) for v in r["bbox"])
            lines.append(f"  {r['order']:>3} {r['type']:<15} {r['score']:.2f} [{x0}, {y0}, {x1}, {y1}]")
    return "\n".join(lines) + "\n"


def _bbox(bbox: list[float]) -> str:
    return ", ".join(str(round(v)) for v in bbox)


def _layout_markdown(result: dict[str, Any]) -> str:
    """Each page's regions as a Markdown table, in reading order."""
    parts = []
    for page in result["pages"]:
        rows = [
            f"| {r['order']} | {r['type']} | {r['score']:.2f} | {_bbox(r['bbox'])} |" for r in page["regions"]
        ]
        header = ["| order | type | score | bbox (x0, y0, x1, y1 px) |", "|---:|---|---:|---|"]
        title = f"## Page {page['page']} ({page['width']}x{page['height']})"
        parts.append("\n".join([title, "", *(header + rows if rows else ["No regions found."])]))
    return "\n\n".join(parts) + "\n"


def _table(result: dict[str, Any], fmt: str) -> str:
    if fmt == "md":
        return result["markdown"] + "\n"
    return "\n\n".join(t["html"] for p in result["pages"] for t in p["tables"]) + "\n"


def _parse(result: dict[str, Any], fmt: str) -> str:
    if fmt == "md":
        return result["markdown"]
    return to_text(result["content_list"])  # every block's words, lists, code and tables included


def _formula(result: dict[str, Any], fmt: str) -> str:
    if fmt == "md":
        return result["markdown"] + "\n"
    return "\n".join(p["latex"] for p in result["pages"]) + "\n"


def _summarize(result: dict[str, Any], fmt: str) -> str:
    if fmt != "md":
        return result["summary"] + "\n"
    lines = [result["summary"], "", f"<!-- engine {result['engine']}, language {result['language']} -->"]
    if result.get("fallback"):
        lines.append(
            f"<!-- fell back from {result['fallback']['engine']}: {result['fallback']['reason']} -->"
        )
    lines += ["", "Sources:", ""]
    for source in result["sources"]:
        where = f"page {source['page']}" if source.get("page") else f"chars {source['start']}-{source['end']}"
        lines.append(f"- {' '.join(source['text'].split())} ({where})")
    return "\n".join(lines) + "\n"


_RENDERERS: dict[str, Callable[[dict[str, Any], str], str]] = {
    "ocr": _ocr,
    "layout": _layout,
    "table": _table,
    "parse": _parse,
    "formula": _formula,
    "summarize": _summarize,
}


def render(task: str, body: dict[str, Any], fmt: str) -> str:
    """``body`` is the response body (``Outcome.body()``); ``json`` shows all of it."""
    if fmt == "json":
        return json.dumps(body, ensure_ascii=False, indent=2) + "\n"
    result = body["result"]
    if fmt == "chunks":  # JSON Lines: one retrieval chunk per line, ready for an index
        return "".join(json.dumps(chunk, ensure_ascii=False) + "\n" for chunk in result["chunks"])
    renderer = _RENDERERS.get(task)
    if renderer is None:
        return str(result.get("markdown") or result.get("text") or "") + "\n"
    return renderer(result, fmt)


def self_contained(task: str, body: dict[str, Any], rendered: str, fmt: str) -> str:
    """A rendering that stands alone (for stdout, where no image files are written beside it):
    parse's Markdown with its image links turned into data: URIs of the crops."""
    images: dict[str, str] = body.get("result", {}).get("images") or {}
    if task != "parse" or fmt != "md" or not images:
        return rendered
    for path, data in images.items():
        rendered = rendered.replace(f"]({path})", f"](data:image/png;base64,{data})")
    return rendered


def render_for_stdout(task: str, body: dict[str, Any], fmt: str, source: Path | None) -> str:
    """What ``docfn run`` prints for one input: JSON as one line (JSON Lines: one object per input);
    text and Markdown under a ``==> FILE <==`` header when several inputs share the output."""
    if fmt == "json":
        return json.dumps(body, ensure_ascii=False) + "\n"
    if fmt == "chunks":  # JSON Lines of every input's chunks, one stream (each chunk names no file)
        return render(task, body, fmt)
    text = self_contained(task, body, render(task, body, fmt), fmt)
    return text if source is None else f"==> {source} <==\n{text}\n"


def output_stems(paths: list[Path]) -> list[str]:
    """One output stem per input, never two alike. A stem shared by several inputs becomes their
    path below the folder they have in common: ``a/page.png`` and ``b/page.png`` write ``a-page.*``
    and ``b-page.*``; ``page.png`` and ``page.pdf`` in one folder ``page-png.*`` and ``page-pdf.*``;
    the same file given twice is numbered."""
    resolved = [path.resolve() for path in paths]
    stems = [path.stem for path in resolved]
    for stem in set(stems):
        group = [i for i, other in enumerate(stems) if other == stem]
        if len({resolved[i] for i in group}) < 2:
            continue  # one file given again: numbered below
        common = Path(os.path.commonpath([resolved[i].parent for i in group]))
        relative = {i: resolved[i].relative_to(common) for i in group}
        stems_below = {i: "-".join(relative[i].with_suffix("").parts) for i in group}
        distinct = len(set(stems_below.values())) == len(group)
        for i in group:
            stems[i] = stems_below[i] if distinct else "-".join(relative[i].parts).replace(".", "-")
    seen: dict[str, int] = {}
    for i, stem in enumerate(stems):
        seen[stem] = seen.get(stem, 0) + 1
        if seen[stem] > 1:
            stems[i] = f"{stem}-{seen[stem]}"
    return stems


def write_outputs(
    task: str, body: dict[str, Any], rendered: str, out_dir: Path, stem: str, fmt: str
) -> list[Path]:
    """The files of ``--out`` for one input: the rendering, plus parse's content list and images."""
    if task == "parse":
        return _write_parse(body, rendered, out_dir, stem, fmt)
    target = out_dir / (stem + OUTPUT_SUFFIXES[fmt])
    target.write_text(rendered, encoding="utf-8")
    return [target]


def _write_parse(body: dict[str, Any], rendered: str, out_dir: Path, stem: str, fmt: str) -> list[Path]:
    """``STEM.md`` (or .json/.txt), ``STEM.content_list.json`` and ``STEM_images/*.png``; image
    paths in both files point into ``STEM_images/`` relative to the output directory."""
    result = body["result"]
    prefix = f"{stem}_images/"
    written: list[Path] = []
    images: dict[str, str] = result.get("images") or {}
    if images:
        (out_dir / prefix).mkdir(parents=True, exist_ok=True)
    for path, data in images.items():
        target = out_dir / prefix / path.removeprefix("images/")
        target.write_bytes(base64.b64decode(data))
        written.append(target)
    content = [
        {**b, "img_path": prefix + b["img_path"].removeprefix("images/")} if "img_path" in b else b
        for b in result["content_list"]
    ]
    listing = out_dir / f"{stem}.content_list.json"
    listing.write_text(json.dumps(content, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    main = out_dir / (stem + OUTPUT_SUFFIXES[fmt])
    if fmt == "json":
        trimmed = {**body, "result": {k: v for k, v in result.items() if k != "images"}}  # they are files now
        rendered = json.dumps(trimmed, ensure_ascii=False, indent=2) + "\n"
    elif fmt == "md":
        rendered = rendered.replace("](images/", f"]({prefix}")
    main.write_text(rendered, encoding="utf-8")
    return [main, listing, *written]
