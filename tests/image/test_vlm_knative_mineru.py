"""MinerU's own VLM client (mineru-vl-utils, http-client backend, its default concurrency of 100)
on a full page against the vlm function as Knative runs it: the image with the command, environment
and container settings of the rendered dev overlay's ``docfn-vlm`` Service (docfn_testkit.knative_run,
nothing copied), its pack fetched from moto's S3 where the manifest says (a tiny random model of
MinerU2.5's architecture under the default pack's name, as the other image tests use), and Knative's
queue-proxy in front of it (docfn_testkit.queue_proxy: at most the manifest's containerConcurrency
requests reach the container at once; the others wait in the sidecar's queue).

The random model's answers are noise: what is checked is that every block is answered and none
failed, that the container never refused what the queue-proxy let through (its
DOCFN_VLM_MAX_QUEUE against containerConcurrency) and that the blocks shared the engine's batches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from docfn_testkit.knative_run import READY_WITHIN_S, KnativeContainer, resolve_env, services, task_of
from docfn_testkit.mineru_client import (
    FULL_PAGE_BLOCKS,
    block_types,
    chat_completions,
    crops,
    grid_blocks,
    http_client,
    vlm_batches,
)
from docfn_testkit.paths import DEVSET
from docfn_testkit.queue_proxy import QueueProxy


def _vlm_service() -> str:
    found = [name for name, ksvc in services().items() if task_of(ksvc) == "vlm"]
    assert len(found) == 1, f"the dev overlay deploys {len(found)} vlm Services"
    return found[0]


def test_mineru_client_on_a_full_page_against_the_knative_vlm_service(
    knative_container: Callable[[str], KnativeContainer], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _vlm_service()
    ksvc = services()[name]
    env = resolve_env(ksvc)
    function = knative_container(name)
    function.wait_for("livenessProbe", within=30)
    function.wait_for("readinessProbe", within=READY_WITHIN_S)
    concurrency = int(ksvc["spec"]["template"]["spec"]["containerConcurrency"])
    assert concurrency < 100, "the client then sends more at once than a pod takes: the point here"
    if env.get("DOCFN_API_KEY"):
        monkeypatch.setenv("MINERU_VL_API_KEY", env["DOCFN_API_KEY"])
    else:
        monkeypatch.delenv("MINERU_VL_API_KEY", raising=False)
    before = vlm_batches(function.url)

    with QueueProxy(function.url, concurrency) as proxy:
        client = http_client(proxy.url)
        assert client.max_concurrency == 100  # the client's default, not lowered for docfn
        types = block_types(FULL_PAGE_BLOCKS)
        extracted = client.batch_content_extract(crops(FULL_PAGE_BLOCKS), types)
        assert len(extracted) == FULL_PAGE_BLOCKS
        assert all(block is not None for block in extracted)

        result = client.extract_with_layout(Image.open(DEVSET / "002.png"), grid_blocks(FULL_PAGE_BLOCKS))
        assert [block.type for block in result] == types
        assert all(block.content is not None for block in result)

    logs = function.container.logs()
    received: list[dict[str, Any]] = chat_completions(logs.splitlines())
    assert len(received) == 2 * FULL_PAGE_BLOCKS, logs[-4000:]
    assert [line["status"] for line in received] == [200] * (2 * FULL_PAGE_BLOCKS)
    # The queue-proxy held what a pod does not take at once, and the container took all it let through.
    assert proxy.waited > 0 and proxy.overflowed == 0
    assert proxy.most_in_flight == concurrency
    # The blocks waited together in the engine's queue: far fewer batches than requests.
    after = vlm_batches(function.url)
    batches, sequences = after[0] - before[0], after[1] - before[1]
    assert sequences == 2 * FULL_PAGE_BLOCKS
    assert batches <= sequences / 2
