"""Terraform's defaults for the VLM functions follow from how they are used on Lambda (docs/vlm.md,
"On Lambda"): one request per instance, a page's blocks as one many-crop request. Read from the .tf."""

from __future__ import annotations

from typing import Any

from docfn.adapters.http.vlm_crops import MAX_CROPS
from docfn.core.settings import Settings
from docfn.tasks.vlm.batching import DEFAULT_MAX_BATCH
from docfn_testkit.hcl import attr, module

# Measured (docs/benchmarks/vlm_2026-11-26.md, a quiet machine, 2 vCPUs, int8 decoder + int8
# vision): block encode and prefill, decode tokens/s, pack load; per-row int8's worst extra cost
# (docs/benchmarks/vlm_int8.md); and a cold start's pack fetch of ~1.7 GB from S3 (an allowance, not a
# measurement here).
ENCODE_S, PREFILL_S, DECODE_TOKENS_S, LOAD_S = 1.700, 0.475, 19.56, 8.2
PER_ROW_COST = 1.2
FETCH_S = 20
FORMULA_TOKENS = 50
BATCH_STEP_COST = 1.6  # a decoder step of 16 sequences against one (docs/benchmarks/vlm_int8.md: 1.4x at 8)


def var_default(name: str) -> Any:
    return attr(module().variables[name], "default")


def _crops_seconds(crops: int) -> float:
    """A many-crop request at the 2-vCPU figures: every crop encoded, batches decoding in turn."""
    batches = -(-crops // DEFAULT_MAX_BATCH)
    step = BATCH_STEP_COST / DECODE_TOKENS_S
    return PER_ROW_COST * (crops * (ENCODE_S + PREFILL_S) + batches * FORMULA_TOKENS * step)


def test_block_functions_answer_a_full_many_crop_request_within_their_deadline() -> None:
    tasks = var_default("tasks")
    for task in ("formula", "chart"):
        cfg = tasks[task]
        deadline = float(cfg["environment"]["DOCFN_VLM_TIMEOUT_SECONDS"])
        assert _crops_seconds(MAX_CROPS) < deadline, (task, _crops_seconds(MAX_CROPS))
        # The deadline (504 with advice) ends before Lambda's timeout, a cold start included.
        assert deadline + FETCH_S + LOAD_S < cfg["timeout"], task
        assert cfg["memory_size"] == 8192 and cfg["reserved_concurrency"] == 4, task


def test_the_vlm_function_outlasts_its_own_deadline_and_takes_a_page_in_flight_per_caller() -> None:
    tasks = var_default("tasks")
    vlm = tasks["vlm"]
    assert "DOCFN_VLM_TIMEOUT_SECONDS" not in vlm.get("environment", {})  # the app's 600 s
    assert Settings().vlm_timeout_seconds + FETCH_S + LOAD_S < vlm["timeout"] <= 900
    assert vlm["memory_size"] == 10240
    # One page's blocks per request: as many instances as parse has (its default reserved concurrency).
    assert vlm["reserved_concurrency"] == tasks["parse"].get("reserved_concurrency", 10) == 10
