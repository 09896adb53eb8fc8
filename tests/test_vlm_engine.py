"""The VLM's batching queue on the tiny random pack: requests arriving within the window share
forward passes, and each gets exactly the answer it would get alone."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from docfn.core import metrics
from docfn.core.errors import BadOptions, DeadlineExceeded
from docfn.packs.manifest import verify_pack
from docfn.tasks.vlm.engine import VlmEngine
from docfn.tasks.vlm.model import DEFAULT_SYSTEM, VlmModel
from docfn.tasks.vlm.preprocess import preprocess
from docfn.tasks.vlm.sampling import SamplingKnobs
from docfn_testkit.paths import DEVSET
from docfn_testkit.servers import wait_until

TOKENS = 12
# A window no test waits out: a batch forms when max_batch requests are queued, so which requests
# share it is decided by the test, not by timing.
NEVER = 3600.0
CROPS = [("001", 80, 120, 700, 190), ("002", 100, 300, 460, 620), ("003", 60, 200, 200, 900)]
PROMPTS = ["\nText Recognition:", "\nTable Recognition:", "\nFormula Recognition:", "\nImage Analysis:"]


@pytest.fixture(scope="module")
def model(vlm_tiny_pack: Path) -> VlmModel:
    return VlmModel.from_pack(vlm_tiny_pack, verify_pack(vlm_tiny_pack), threads=1)


@pytest.fixture(scope="module")
def crops() -> list[Image.Image]:
    return [Image.open(DEVSET / f"{page}.png").crop(box) for page, *box in CROPS]


def _batches() -> tuple[float, float]:
    """(batches run, sequences in them) so far, from the engine's histogram."""
    samples = {s.name: s.value for s in metrics.VLM_BATCH_SIZE.collect()[0].samples}
    return samples["docfn_vlm_batch_size_count"], samples["docfn_vlm_batch_size_sum"]


def _alone(model: VlmModel, image: Image.Image | None, prompt: str, knobs: SamplingKnobs) -> list[int]:
    content: list = [prompt]
    images = []
    if image is not None:
        images = [preprocess(image, model.processor)]
        content = [images[0], prompt]
    prompt_ids = model.chat_prompt(content, system=DEFAULT_SYSTEM)
    return model.generate(prompt_ids, images, max_new_tokens=TOKENS, knobs=knobs).token_ids


def test_concurrent_requests_share_one_batch_and_get_their_own_answers(
    model: VlmModel, crops: list[Image.Image]
) -> None:
    requests = [
        (crops[0], PROMPTS[0], SamplingKnobs()),
        (crops[1], PROMPTS[1], SamplingKnobs(presence_penalty=1.0, frequency_penalty=0.005)),
        (crops[2], PROMPTS[2], SamplingKnobs(repetition_penalty=1.3, no_repeat_ngram_size=3)),
        (None, "Merge these two tables?", SamplingKnobs(presence_penalty=1.0)),
    ]
    engine = VlmEngine(model, window_seconds=NEVER, max_batch=len(requests))
    before = _batches()
    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(lambda r: engine.generate(r[0], r[1], r[2], TOKENS, None), requests))
    engine.close()
    count, total = _batches()
    assert (count - before[0], total - before[1]) == (1, len(requests))  # one batch of four
    for (image, prompt, knobs), answer in zip(requests, answers, strict=True):
        assert answer.token_ids == _alone(model, image, prompt, knobs)
        assert answer.text == model.decode(answer.token_ids)
        assert answer.finish_reason in ("stop", "length") and answer.prompt_tokens > 0


def test_a_lone_request_runs_when_its_window_closes(model: VlmModel, crops: list[Image.Image]) -> None:
    engine = VlmEngine(model, window_seconds=0.0, max_batch=16)
    answer = engine.generate(crops[0], PROMPTS[0], SamplingKnobs(), 4, None)
    engine.close()
    assert (
        len(answer.token_ids) <= 4
        and answer.token_ids == _alone(model, crops[0], PROMPTS[0], SamplingKnobs())[:4]
    )


def test_special_tokens_are_kept_when_asked(model: VlmModel, crops: list[Image.Image]) -> None:
    engine = VlmEngine(model, window_seconds=0.0)
    kept = engine.generate(crops[1], PROMPTS[3], SamplingKnobs(), TOKENS, None, skip_special_tokens=False)
    engine.close()
    assert kept.text == model.decode(kept.token_ids, skip_special_tokens=False)


def test_a_late_request_fails_alone_and_its_batch_goes_on(model: VlmModel, crops: list[Image.Image]) -> None:
    engine = VlmEngine(model, window_seconds=NEVER, max_batch=2)
    with ThreadPoolExecutor(2) as pool:
        late = pool.submit(engine.generate, crops[0], PROMPTS[0], SamplingKnobs(), TOKENS, time.monotonic())
        on_time = pool.submit(engine.generate, crops[1], PROMPTS[0], SamplingKnobs(), TOKENS, None)
        with pytest.raises(DeadlineExceeded):
            late.result()
        assert on_time.result().token_ids == _alone(model, crops[1], PROMPTS[0], SamplingKnobs())
    engine.close()


def test_a_deadline_passing_while_decoding_ends_that_sequence_only(
    model: VlmModel, crops: list[Image.Image]
) -> None:
    """The decoder is held at its third step until the late request's deadline has passed (a real
    condition, no timing guess): that sequence leaves the batch, the other decodes on."""
    engine = VlmEngine(model, window_seconds=NEVER, max_batch=2)
    decoder, steps = model._decoder, [0]
    deadline = time.monotonic() + 0.5

    class Held:
        """The decoder session, holding its third step until the late request's deadline passed."""

        def _hold(self) -> None:
            steps[0] += 1
            if steps[0] == 3:
                wait_until(lambda: time.monotonic() > deadline, "the late request's deadline")

        def run(self, *args: object, **kwargs: object) -> object:
            self._hold()
            return decoder.run(*args, **kwargs)

        def run_with_ort_values(self, *args: object, **kwargs: object) -> object:
            self._hold()  # the decode loop keeps the KV cache in ONNX Runtime values
            return decoder.run_with_ort_values(*args, **kwargs)

    model._decoder = Held()  # type: ignore[assignment]
    try:
        with ThreadPoolExecutor(2) as pool:
            late = pool.submit(engine.generate, crops[0], PROMPTS[0], SamplingKnobs(), TOKENS, deadline)
            other = pool.submit(engine.generate, crops[1], PROMPTS[0], SamplingKnobs(), TOKENS, None)
            with pytest.raises(DeadlineExceeded):
                late.result()
            answer = other.result()
    finally:
        model._decoder = decoder
        engine.close()
    assert answer.token_ids == _alone(model, crops[1], PROMPTS[0], SamplingKnobs())


def test_max_tokens_below_one_is_refused_without_failing_the_batch(
    model: VlmModel, crops: list[Image.Image]
) -> None:
    engine = VlmEngine(model, window_seconds=0.0)
    with pytest.raises(BadOptions, match="max_tokens"):
        engine.generate(crops[0], PROMPTS[0], SamplingKnobs(), 0, None)
    assert engine.generate(crops[0], PROMPTS[0], SamplingKnobs(), 2, None).token_ids
    engine.close()


def test_callers_on_many_threads_are_all_answered(model: VlmModel, crops: list[Image.Image]) -> None:
    engine = VlmEngine(model, window_seconds=0.01, max_batch=3)
    answers: list[list[int]] = [[] for _ in range(7)]

    def call(n: int) -> None:
        answers[n] = engine.generate(crops[n % 3], PROMPTS[n % 4], SamplingKnobs(), 3, None).token_ids

    threads = [threading.Thread(target=call, args=(n,)) for n in range(7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.close()
    for n, answer in enumerate(answers):
        assert answer == _alone(model, crops[n % 3], PROMPTS[n % 4], SamplingKnobs())[:3]
