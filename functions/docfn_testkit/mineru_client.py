"""MinerU's own VLM client (mineru-vl-utils, http-client backend) against a docfn VLM server: the
sampling parameters per block type, a page's worth of block crops and layout blocks, and what the
server's request log says it received. Shared by the tests that run the client against
``docfn serve`` and against the Knative-shaped container."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
from PIL import Image

from .paths import DEVSET
from .servers import json_log_records, scrape_metric

# MinerU's defaults per block type, each with a small max_new_tokens (a random model may never stop)
# and values that differ between types, so a request's parameters show which block sent them.
LAYOUT_TOKENS = 40
BLOCK_TOKENS = 8
# A page's worth of blocks, more than the page tasks' queue (1 + 8) ever admitted: MinerU's client
# sends them all at once (max_concurrency=100) and the VLM's batching queue must take every one.
FULL_PAGE_BLOCKS = 48
BLOCK_TYPES = ("text", "title", "table", "equation")


def sampling() -> dict[str, Any]:
    """MinerU's per-block-type sampling parameters (``MinerUClient(sampling_params=...)``)."""
    from mineru_vl_utils.mineru_client import MinerUSamplingParams as P

    return {
        "[layout]": P(max_new_tokens=LAYOUT_TOKENS),
        "[default]": P(presence_penalty=1.0, frequency_penalty=0.05, max_new_tokens=BLOCK_TOKENS),
        "table": P(presence_penalty=1.0, frequency_penalty=0.005, max_new_tokens=BLOCK_TOKENS + 1),
        "equation": P(
            presence_penalty=0.5,
            repetition_penalty=1.05,
            no_repeat_ngram_size=20,
            max_new_tokens=BLOCK_TOKENS + 2,
        ),
    }


def http_client(server_url: str) -> Any:
    """MinerU's own client on its ``http-client`` backend at ``server_url``, as the tests run it: the
    per-type sampling above, no progress bars, no retries (a refused request must show)."""
    from mineru_vl_utils import MinerUClient

    return MinerUClient(
        backend="http-client",
        server_url=server_url,
        sampling_params=sampling(),
        use_tqdm=False,
        max_retries=0,
    )


def block_types(count: int) -> list[str]:
    return [BLOCK_TYPES[i % len(BLOCK_TYPES)] for i in range(count)]


def grid_blocks(count: int) -> list[dict[str, Any]]:
    """``count`` layout blocks tiling a page (rows of 6), none overlapping, in reading order."""
    columns = 6
    rows = -(-count // columns)
    blocks = []
    for index in range(count):
        row, column = divmod(index, columns)
        x0, y0 = column / columns, row / rows
        bbox = [round(x0 + 0.01, 3), round(y0 + 0.01, 3), round(x0 + 1 / columns - 0.01, 3)]
        bbox.append(round(y0 + 1 / rows - 0.01, 3))
        blocks.append({"type": BLOCK_TYPES[index % len(BLOCK_TYPES)], "bbox": bbox, "angle": 0})
    return blocks


def crops(count: int) -> list[Image.Image]:
    """``count`` distinct block crops from the devset's pages (lines, paragraphs, wide and small)."""
    pages = [Image.open(DEVSET / f"{n:03d}.png").convert("RGB") for n in range(1, 6)]
    found = []
    for index in range(count):
        page = pages[index % len(pages)]
        top = 60 + (index * 37) % (page.height - 260)
        height = 40 + (index * 29) % 200
        left = 40 + (index * 13) % 120
        found.append(page.crop((left, top, page.width - left, top + height)))
    return found


def chat_completions(log_lines: Iterable[str]) -> list[dict[str, Any]]:
    """Each chat completion's request log line (JSON, ``route: chat.completions``), in order."""
    return [record for record in json_log_records(log_lines) if record.get("route") == "chat.completions"]


def vlm_batches(url: str) -> tuple[float, float]:
    """The engine's batches so far and the sequences they took (``docfn_vlm_batch_size`` on the
    server's ``/metrics``)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return (
        scrape_metric(text, "docfn_vlm_batch_size_count") or 0.0,
        scrape_metric(text, "docfn_vlm_batch_size_sum") or 0.0,
    )
