"""Measuring an OCR pack (or a combination of candidate model files) on pages with known text.

Used by ``docfn models quantize`` to choose per model and to record accuracy in the manifest, and
by the benchmarks. Candidates run interleaved page by page (timings drift on shared machines) and
warm (one page of warm-up each), CER as everywhere in docfn: NFKC, whitespace removed, corpus-level.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.textmetrics import edit_distance, normalise
from ..packs.manifest import Manifest, PackFile

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class EvalPage:
    id: str
    rgb: np.ndarray
    truth: str | None


def page_ids(directory: Path) -> list[str]:
    """Ids in the directory's ``manifest.json`` order (the devset), else image stems sorted."""
    manifest = directory / "manifest.json"
    if manifest.is_file():
        return [str(entry["id"]) for entry in json.loads(manifest.read_text())]
    return sorted(p.stem for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def load_pages(directory: Path, ids: list[str]) -> list[EvalPage]:
    from PIL import Image

    pages = []
    for page_id in ids:
        image = next(
            directory / f"{page_id}{s}" for s in IMAGE_SUFFIXES if (directory / f"{page_id}{s}").is_file()
        )
        truth_path = directory / f"{page_id}.txt"
        truth = truth_path.read_text(encoding="utf-8") if truth_path.is_file() else None
        pages.append(EvalPage(page_id, np.asarray(Image.open(image).convert("RGB")), truth))
    return pages


def spread(ids: list[str], count: int) -> list[str]:
    """``count`` ids evenly spread over the list (the devset is grouped by category)."""
    if count >= len(ids):
        return list(ids)
    return [ids[round(i * len(ids) / count)] for i in range(count)]


def engine_for(files: dict[str, Path], config: dict, threads: int = 0):  # type: ignore[no-untyped-def]
    """An OcrEngine over arbitrary model files (role -> path): candidates need no pack of their own."""
    from ..tasks.ocr.engine import OcrEngine

    root = Path("/")
    entries = [
        PackFile(path=str(p.resolve().relative_to(root)), sha256="", size=0, role=r) for r, p in files.items()
    ]
    manifest = Manifest(
        name="candidate",
        version="0",
        tasks=["ocr"],
        runtime="onnxruntime",
        precision="",
        files=entries,
        config=config,
    )
    return OcrEngine(root, manifest, threads)


@dataclass
class Measurement:
    cer: float
    s_per_page: float
    per_page_cer: dict[str, float] = field(default_factory=dict)


def measure(
    engines: dict[str, object],
    pages: list[EvalPage],
    *,
    warmup: bool = True,
    repeats: int = 1,
    on_round: Callable[[int, int], None] | None = None,
) -> dict[str, Measurement]:
    """Corpus CER and warm seconds per page for each engine, run interleaved page by page.

    With ``repeats`` > 1 every engine reads the pages that many rounds and its speed is the median
    round: one round disturbed by a neighbour on a shared CPU does not decide a choice. CER is
    deterministic and taken from the first round. ``on_round(done, repeats)`` reports progress.
    """
    from ..tasks.ocr.engine import page_text

    scored = [p for p in pages if p.truth is not None]
    if not scored:
        raise ValueError("no evaluation page has a ground-truth .txt beside it")
    for engine in engines.values() if warmup else ():  # warm-up: first-run allocations are not per-page cost
        engine.recognize_lines(scored[0].rgb)  # type: ignore[attr-defined]
    rounds: dict[str, list[float]] = {k: [] for k in engines}
    edits = dict.fromkeys(engines, 0)
    per_page: dict[str, dict[str, float]] = {k: {} for k in engines}
    total = sum(len(normalise(p.truth or "")) for p in scored)
    for round_index in range(max(1, repeats)):
        elapsed = dict.fromkeys(engines, 0.0)
        for page in scored:
            truth = normalise(page.truth or "")
            for key, engine in engines.items():
                start = time.perf_counter()
                text = page_text(engine.recognize_lines(page.rgb))  # type: ignore[attr-defined]
                elapsed[key] += time.perf_counter() - start
                if round_index == 0:
                    distance = edit_distance(normalise(text), truth)
                    edits[key] += distance
                    per_page[key][page.id] = round(distance / max(1, len(truth)), 4)
        for key in engines:
            rounds[key].append(elapsed[key] / len(scored))
        if on_round is not None:
            on_round(round_index + 1, max(1, repeats))
    return {
        key: Measurement(edits[key] / max(1, total), statistics.median(rounds[key]), per_page[key])
        for key in engines
    }
