"""The compute pool OCR runs on: never more than its threads at once, however many requests, and
the same answers as reading one line after another."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from docfn.adapters.wiring import build_service
from docfn.core.compute import ComputePool
from docfn.core.cpus import available_cpus
from docfn.core.settings import Settings
from docfn.packs.catalog import RECIPES
from docfn.packs.manifest import verify_pack
from docfn.tasks.ocr.engine import OcrEngine, page_text
from docfn.tooling.build import build_pack
from docfn_testkit.paths import OCR_PACK


@pytest.fixture(scope="module")
def pack(model_store: Path) -> Path:
    return build_pack(RECIPES[OCR_PACK], model_store)


@pytest.fixture(scope="module")
def page(devset: Path) -> np.ndarray:
    return np.asarray(Image.open(devset / "003.png").convert("RGB"))


def test_pool_runs_exactly_its_threads_at_once() -> None:
    pool = ComputePool(3)
    # Every task waits until three run together: a pool running fewer would time out the barrier.
    barrier = threading.Barrier(3, timeout=20)
    results = pool.map(lambda i: (barrier.wait(), i * i)[1], range(12))
    assert results == [i * i for i in range(12)]  # in order, whatever order they ran in
    assert pool.peak_running == 3


def test_concurrent_pages_never_exceed_the_pool(pack: Path, page: np.ndarray) -> None:
    engine = OcrEngine(pack, verify_pack(pack), threads=2)
    alone = page_text(engine.recognize_lines(page))
    engine.pool.peak_running = 0
    with ThreadPoolExecutor(4) as requests:  # four requests at once, two workers
        texts = list(requests.map(lambda _: page_text(engine.recognize_lines(page)), range(4)))
    assert engine.pool.peak_running == 2
    assert texts == [alone] * 4


def test_lines_read_in_parallel_match_lines_read_in_sequence(pack: Path, page: np.ndarray) -> None:
    manifest = verify_pack(pack)
    parallel = OcrEngine(pack, manifest, threads=2).recognize_lines(page)
    sequential = OcrEngine(pack, manifest, threads=1).recognize_lines(page)
    assert [line.to_dict() for line in parallel] == [line.to_dict() for line in sequential]
    assert len(parallel) > 20


def test_line_sessions_are_single_threaded_and_the_detector_has_the_pools_threads(pack: Path) -> None:
    engine = OcrEngine(pack, verify_pack(pack))
    assert engine.pool.threads == available_cpus()
    # The lines are spread over the pool; the page's one detection spreads over its own threads.
    assert engine.recognizer.session.get_session_options().intra_op_num_threads == 1
    assert engine.detector.session.get_session_options().intra_op_num_threads == engine.pool.threads
    for session in (engine.detector.session, engine.recognizer.session):
        assert not session.get_session_options().enable_mem_pattern
    alone = OcrEngine(pack, verify_pack(pack), threads=1)
    assert alone.detector.session.get_session_options().intra_op_num_threads == 1


def test_ocr_sessions_take_tensors_from_the_shared_arena(pack: Path) -> None:
    engine = OcrEngine(pack, verify_pack(pack))
    for session in (engine.detector.session, engine.recognizer.session):
        assert session.get_session_options().get_session_config_entry("session.use_env_allocators") == "1"


def test_admission_zero_means_the_cpu_quota(model_store: Path) -> None:
    service = build_service(Settings(tasks=["ocr"], model_store=model_store, max_concurrency=0))
    assert service.admission.concurrency == available_cpus()
    default = build_service(Settings(tasks=["ocr"], model_store=model_store))
    assert default.admission.concurrency == 1
