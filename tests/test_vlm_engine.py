"""The VLM's engine on the tiny random pack: requests share forward passes (arriving together, or
joining the running batch at the next step), and each gets exactly the answer it would get alone;
deadlines and cancellation stop a sequence's decoding; text streams and stop strings."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from docfn.core import metrics
from docfn.core.errors import BadInput, BadOptions, ClientGone, DeadlineExceeded
from docfn.packs.manifest import verify_pack
from docfn.tasks.vlm.blocks import VlmCall
from docfn.tasks.vlm.engine import VlmEngine
from docfn.tasks.vlm.generation import Generation, GenerationRequest
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


def _steps() -> float:
    """Sequence-steps the engines decoded so far (docfn_vlm_decode_steps_total)."""
    return metrics.VLM_DECODE_STEPS.collect()[0].samples[0].value


def _endless(engine: VlmEngine, image: Image.Image, tokens: int, **given: object) -> GenerationRequest:
    """A request the random model never stops by itself (no stop tokens): it decodes to ``tokens``."""
    request = engine.request(image, PROMPTS[0], SamplingKnobs(), tokens, None)
    return dataclasses.replace(request, stop_tokens=frozenset(), **given)


def test_a_request_arriving_while_others_decode_joins_them_at_the_next_step(
    model: VlmModel, crops: list[Image.Image]
) -> None:
    """Iteration-level scheduling: the second request is submitted from the first one's fifth token
    and decodes beside it (its first token comes while the first still runs); both answers are
    exactly the ones they get alone, though the joining cache was padded to the batch's."""
    engine = VlmEngine(model, window_seconds=0.0, max_batch=4)
    order: list[str] = []
    joined: list[Future[Generation]] = []

    def on_first_token(token: int) -> None:
        order.append("first")
        if len(order) == 5:
            joined.extend(
                engine.submit([engine.request(crops[1], PROMPTS[1], SamplingKnobs(), TOKENS, None)])
            )

    first = engine.submit([_endless(engine, crops[0], 40, on_token=on_first_token)])[0]
    long_answer = first.result()
    short_answer = joined[0].result()
    engine.close()
    assert len(long_answer.token_ids) == 40
    # The joining request finished while the long one still decoded (40 steps against 5 + 12).
    assert short_answer.decode_steps <= TOKENS + 1 and long_answer.decode_steps == 40
    prompt = engine.request(crops[0], PROMPTS[0], SamplingKnobs(), 40, None)
    alone = model.generate(prompt.prompt, prompt.images, max_new_tokens=40, stop_tokens=frozenset())
    assert long_answer.token_ids == alone.token_ids
    assert short_answer.token_ids == _alone(model, crops[1], PROMPTS[1], SamplingKnobs())


def test_a_deadline_stops_decoding_within_one_step_and_the_batch_goes_on(
    model: VlmModel, crops: list[Image.Image]
) -> None:
    """max_tokens 4096 and no stop token: only the deadline ends the late sequence. It decodes at most
    one more token after its deadline, the engine stops spending passes on it (its decode-step
    counter stops), and the request sharing its batch is answered exactly."""
    engine = VlmEngine(model, window_seconds=NEVER, max_batch=2)
    deadline = time.monotonic() + 1.0
    times: list[float] = []
    late = _endless(
        engine, crops[0], 4096, deadline=deadline, on_token=lambda _: times.append(time.monotonic())
    )
    other = engine.request(crops[1], PROMPTS[0], SamplingKnobs(), TOKENS, None)
    late_answer, other_answer = engine.submit([late, other])
    with pytest.raises(DeadlineExceeded):
        late_answer.result()
    assert other_answer.result().token_ids == _alone(model, crops[1], PROMPTS[0], SamplingKnobs())
    steps = _steps()
    time.sleep(0.3)
    assert _steps() == steps  # nothing decodes any more
    engine.close()
    assert 0 < len(times) < 4096
    assert sum(t >= deadline for t in times) <= 1


def test_a_cancelled_request_leaves_the_batch_at_the_next_step(
    model: VlmModel, crops: list[Image.Image]
) -> None:
    engine = VlmEngine(model, window_seconds=0.0)
    cancelled = threading.Event()
    tokens: list[int] = []

    def on_token(token: int) -> None:
        tokens.append(token)
        if len(tokens) == 3:
            cancelled.set()  # the caller left (the chat route sets it on an HTTP disconnect)

    request = _endless(engine, crops[0], 4096, on_token=on_token, cancelled=cancelled)
    with pytest.raises(ClientGone):
        engine.submit([request])[0].result()
    engine.close()
    assert len(tokens) == 3


def test_blocks_submitted_together_share_one_prefill(model: VlmModel, crops: list[Image.Image]) -> None:
    engine = VlmEngine(model, window_seconds=0.0, max_batch=8)
    calls = [VlmCall(crop, prompt, SamplingKnobs(), TOKENS) for crop in crops for prompt in PROMPTS[:2]]
    before = _batches()
    answers = [future.result() for future in engine.submit_many(calls, None)]
    count, total = _batches()
    engine.close()
    assert (count - before[0], total - before[1]) == (1, len(calls))  # one prefill for all six
    for call, answer in zip(calls, answers, strict=True):
        assert answer.token_ids == _alone(model, call.image, call.prompt, call.knobs)
        assert answer.text == model.decode(answer.token_ids)


def test_text_is_streamed_as_decoded_and_a_stop_string_ends_decoding(
    model: VlmModel, crops: list[Image.Image]
) -> None:
    engine = VlmEngine(model, window_seconds=0.0)
    pieces: list[str] = []
    whole = engine.generate(crops[0], PROMPTS[0], SamplingKnobs(), 24, None, on_text=pieces.append)
    assert len(pieces) > 1 and "".join(pieces) == whole.text
    stop = whole.text[len(whole.text) // 2 :][:2]
    cut = whole.text.find(stop)
    stopped_pieces: list[str] = []
    stopped = engine.generate(
        crops[0], PROMPTS[0], SamplingKnobs(), 24, None, stop=[stop], on_text=stopped_pieces.append
    )
    engine.close()
    assert stopped.text == whole.text[:cut] and "".join(stopped_pieces) == stopped.text
    assert stopped.finish_reason == "stop"
    # Decoding stopped at the token completing the stop string: fewer tokens, a prefix of the whole.
    assert len(stopped.token_ids) < len(whole.token_ids)
    assert stopped.token_ids == whole.token_ids[: len(stopped.token_ids)]


def test_a_request_whose_prefill_fails_fails_alone_and_the_running_batch_goes_on(
    model: VlmModel, crops: list[Image.Image]
) -> None:
    engine = VlmEngine(model, window_seconds=0.0)
    bad: list[Future[Generation]] = []

    def on_token(token: int) -> None:
        if not bad:  # joins at the next step: its image tokens have no image
            request = engine.request(crops[1], PROMPTS[0], SamplingKnobs(), TOKENS, None)
            bad.extend(engine.submit([dataclasses.replace(request, images=[])]))

    running = engine.submit([_endless(engine, crops[0], 20, on_token=on_token)])[0]
    answer = running.result()
    with pytest.raises(BadInput, match="image tokens"):
        bad[0].result()
    engine.close()
    prompt = engine.request(crops[0], PROMPTS[0], SamplingKnobs(), 20, None)
    alone = model.generate(prompt.prompt, prompt.images, max_new_tokens=20, stop_tokens=frozenset())
    assert answer.token_ids == alone.token_ids
