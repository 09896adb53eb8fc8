"""Capacity means capacity: a request that hits its deadline answers 504 at once, but its place is
free only when its worker has stopped, so the requests behind it are refused (429 + Retry-After)
instead of running beside it. Observed by counting the service's running work and the real OCR
task's concurrent ``predict_page`` calls on a real four-page PDF."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

from docfn_testkit import docgen
from docfn_testkit.concurrency import Concurrency
from docfn_testkit.docgen import pdf_from_images
from docfn_testkit.paths import SAMPLE_PAGE


def _pdf(seed: int) -> bytes:
    page = Image.open(SAMPLE_PAGE).convert("RGB")
    page.putpixel((seed, 0), (seed % 256, 0, 0))  # a distinct input: no cache hits
    return pdf_from_images([page] * 4)


def test_deadline_keeps_the_slot_until_the_work_stops(model_store: Path) -> None:
    from docfn.adapters.http.app import create_app
    from docfn.adapters.wiring import build_service
    from docfn.core.settings import Settings

    settings = Settings(
        model_store=model_store,
        tasks=["ocr"],
        max_concurrency=1,
        max_queue=0,
        inference_timeout_seconds=0.5,
        retry_after_seconds=3,
    )
    service = build_service(settings)
    # Loads the model, and caches the page the last request sends (answered well within 0.5 s).
    service.run("ocr", SAMPLE_PAGE.read_bytes(), "image/png")
    hosted = service.task("ocr")
    # The first page waits until the test lets it go: the request behind it is surely past its
    # deadline while its work still runs (no timing guess), and the real model then runs the page.
    release = threading.Event()
    work, predicts = Concurrency(), Concurrency()
    service.run = work.wrap(service.run)  # type: ignore[method-assign]
    hosted.task.predict_page = predicts.wrap(  # type: ignore[method-assign]
        hosted.task.predict_page, before=lambda: release.wait(60)
    )
    app = create_app(settings, service)

    async def post(client: httpx.AsyncClient, body: bytes, content_type: str) -> httpx.Response:
        return await client.post("/v1/ocr", content=body, headers={"content-type": content_type})

    async def scenario() -> tuple[list[httpx.Response], list[httpx.Response], httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docfn", timeout=120) as client:
            burst = await asyncio.gather(*(post(client, _pdf(seed), "application/pdf") for seed in range(6)))
            # The timed-out request's work is still running: nobody else may start.
            assert work.running == 1 and service.admission.admitted == 1
            behind = await asyncio.gather(
                *(post(client, _pdf(seed), "application/pdf") for seed in range(10, 13))
            )
            release.set()
            deadline = time.monotonic() + 60
            while service.admission.admitted:  # the abandoned work stops at its next page
                assert time.monotonic() < deadline, "the timed-out work never gave its place back"
                await asyncio.sleep(0.05)
            after = await post(client, SAMPLE_PAGE.read_bytes(), "image/png")
            return burst, behind, after

    burst, behind, after = asyncio.run(scenario())

    assert sorted(r.status_code for r in burst) == [429] * 5 + [504]
    assert [r.status_code for r in behind] == [429] * 3
    for refused in [*burst, *behind]:
        if refused.status_code == 429:
            assert refused.headers["retry-after"] == "3"
            assert refused.json()["error"]["code"] == "overloaded"
    assert after.status_code == 200
    assert work.most == 1 and predicts.most == 1
    assert after.headers["x-docfn-cache"] == "hit"
    # The abandoned four-page request stopped at its deadline after its first page.
    assert predicts.calls == 1


def test_the_next_request_decodes_while_another_computes_one_at_a_time() -> None:
    """``slot_after``: while one request holds the slot, the first waiting request prepares (decodes
    its page) at once, the others wait for their turn to prepare (one decoded page waits, not the
    whole queue's), and each takes the slot with what it prepared, in turn."""
    from docfn.service.admission import Admission

    admission = Admission(concurrency=1, queue=8, retry_after=1)
    prepared: list[int] = []
    inside: list[int] = []
    lock = threading.Lock()
    release = threading.Event()

    def prepare(n: int) -> int:
        with lock:
            prepared.append(n)
        return n

    def request(n: int) -> None:
        with admission.slot_after(lambda: prepare(n)) as value:
            assert value == n
            with lock:
                inside.append(n)
            if n == 0:
                release.wait(30)

    first = threading.Thread(target=request, args=(0,))
    first.start()
    deadline = time.monotonic() + 30
    while not inside:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    waiting = [threading.Thread(target=request, args=(n,)) for n in (1, 2, 3)]
    for thread in waiting:
        thread.start()
    while len(prepared) < 2:  # one of them prepares while request 0 still computes
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.2)
    assert len(prepared) == 2 and inside == [0], "only one waiting request may prepare ahead"
    release.set()
    for thread in [first, *waiting]:
        thread.join(30)
    assert sorted(prepared) == [0, 1, 2, 3] and sorted(inside) == [0, 1, 2, 3]


def test_a_page_that_cannot_be_decoded_takes_no_slot() -> None:
    from docfn.service.admission import Admission

    admission = Admission(concurrency=1, queue=0, retry_after=1)

    def broken() -> None:
        raise ValueError("corrupt")

    try:
        with admission.slot_after(broken):
            raise AssertionError("the slot was taken")
    except ValueError:
        pass
    with admission.slot_after(lambda: 1) as value:  # the slot and the turn to prepare are free
        assert value == 1


def test_bad_input_answers_at_once_while_a_page_computes(model_store: Path) -> None:
    """With the one slot held by a running page and another request's page decoded and waiting,
    an oversized body (413), a type docfn does not read (415) and a corrupt image (400) are answered
    at once, not after the pages ahead of them; the good requests then finish."""
    from docfn.adapters.http.app import create_app
    from docfn.adapters.wiring import build_service
    from docfn.core.settings import Settings

    settings = Settings(model_store=model_store, tasks=["ocr"], max_body_bytes=2_000_000)
    service = build_service(settings)
    hosted = service.task("ocr")
    release = threading.Event()
    predicts = Concurrency()
    hosted.task.predict_page = predicts.wrap(  # type: ignore[method-assign]
        hosted.task.predict_page, before=lambda: release.wait(60)
    )
    app = create_app(settings, service)
    page = Image.open(SAMPLE_PAGE).convert("RGB")

    def png(seed: int) -> bytes:
        copy = page.copy()
        copy.putpixel((seed, 0), (seed, 0, 0))
        return docgen.png_bytes(copy)

    async def post(client: httpx.AsyncClient, body: bytes, content_type: str) -> httpx.Response:
        return await client.post("/v1/ocr", content=body, headers={"content-type": content_type})

    async def scenario() -> tuple[list[httpx.Response], list[httpx.Response]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docfn", timeout=120) as client:
            good = [asyncio.create_task(post(client, png(seed), "image/png")) for seed in (1, 2)]
            deadline = time.monotonic() + 60
            while predicts.running == 0:  # the first page holds the slot
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            bad = await asyncio.gather(
                post(client, b"\0" * 2_000_001, "image/png"),
                post(client, b"hello", "text/plain"),
                post(client, b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png"),
            )
            assert predicts.calls == 1  # answered while the first page still computes
            release.set()
            return bad, list(await asyncio.gather(*good))

    bad, good = asyncio.run(scenario())
    assert [r.status_code for r in bad] == [413, 415, 400], [r.text for r in bad]
    assert [r.status_code for r in good] == [200, 200]
