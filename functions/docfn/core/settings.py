"""One typed settings object, read from ``DOCFN_*`` environment variables."""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .environment import in_cloud_function, on_lambda

ALL_TASKS: tuple[str, ...] = ("ocr", "layout", "table", "formula", "chart", "parse", "summarize", "vlm")
# The block types parse can send to the VLM (DOCFN_PARSE_VLM_BLOCKS, parse's vlm_blocks option).
VLM_BLOCK_TYPES: tuple[str, ...] = ("formula", "table", "chart")
# DOCFN_* variables read outside Settings on purpose, so start-up does not call them unknown: the
# image build's (scripts/build_image), the lock's (scripts/lock) and the test suite's own. None of
# them reaches a deployed function; tests/test_unknown_settings.py checks each is still read.
NOT_SETTINGS: frozenset[str] = frozenset(
    {
        "DOCFN_BASE_IMAGE",
        "DOCFN_BUILD_NO_CACHE",
        "DOCFN_DEBIAN_MIRROR",
        "DOCFN_IMAGE_TAG",
        "DOCFN_IMAGE_PACK_STORE",
        "DOCFN_REBUILD_BASE",
        "DOCFN_FIND_LINKS",
        "DOCFN_TEST_WHEEL_CACHE",
        "DOCFN_TEST_WORKERS",
        "DOCFN_IMAGE_TEST_CACHE",
    }
)


def _default_model_store() -> Path:
    # Containers (Lambda, Knative) only have a writable /tmp; a laptop keeps packs across runs.
    if in_cloud_function():
        return Path("/tmp/docfn/models")
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "docfn" / "models"


# A Lambda invocation payload (a function URL or API request included) is capped at 6 MB, so on
# Lambda the synchronous limit says so itself (413 pointing at POST /v1/uploads) unless configured.
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024


def _default_max_body_bytes() -> int:
    if on_lambda():
        return LAMBDA_PAYLOAD_LIMIT
    return 50 * 1024 * 1024


class Settings(BaseSettings):
    """Every knob docfn has. Field ``x`` is read from ``DOCFN_X``."""

    model_config = SettingsConfigDict(env_prefix="DOCFN_", extra="ignore", frozen=True)

    # NoDecode: the variable is a comma list (DOCFN_TASKS=ocr,parse), not JSON.
    tasks: Annotated[list[str], NoDecode] = Field(
        default=list(ALL_TASKS), description="Tasks this instance serves."
    )
    model_uri: str | None = Field(
        default=None, description="Model pack for this function: s3://BUCKET/models/NAME/VERSION or a path."
    )
    ocr_model_uri: str | None = Field(
        default=None, description="OCR pack for tasks that also read text (parse): as DOCFN_MODEL_URI."
    )
    layout_model_uri: str | None = Field(
        default=None, description="Layout pack that table finds tables on a page with: as DOCFN_MODEL_URI."
    )
    table_structure_model_uri: str | None = Field(
        default=None, description="Table structure pack (SLANet) of table and parse: as DOCFN_MODEL_URI."
    )
    vlm_model_uri: str | None = Field(
        default=None,
        description="VLM pack (MinerU2.5) of the tasks that send it blocks or prompts (formula, chart,"
        " table and parse VLM modes, summarize engine=vlm): as DOCFN_MODEL_URI.",
    )
    # summarize's abstractive endpoint: any OpenAI-compatible chat completions API.
    summarize_url: str | None = Field(
        default=None,
        description="OpenAI-compatible API base URL (…/v1) summarize's llm engine calls; unset, it is off.",
    )
    summarize_model: str | None = Field(
        default=None, description="The model name sent to DOCFN_SUMMARIZE_URL (none: the endpoint's default)."
    )
    summarize_api_key: str | None = Field(
        default=None, description="API key of DOCFN_SUMMARIZE_URL (locally; in the cloud use the secret ARN)."
    )
    summarize_api_key_secret_arn: str | None = Field(
        default=None, description="Secrets Manager ARN of DOCFN_SUMMARIZE_URL's API key."
    )
    summarize_timeout_seconds: float = Field(
        default=20.0, gt=0, description="Timeout of one call to DOCFN_SUMMARIZE_URL."
    )
    summarize_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of a failed call to DOCFN_SUMMARIZE_URL (5xx, 429, network).",
    )
    summarize_max_chars: int = Field(
        default=2_000_000,
        ge=1,
        description="Longest text summarize reads (413 beyond), documents' text included.",
    )
    summarize_part_tokens: int = Field(
        default=3000,
        ge=100,
        description="Long texts are summarised in parts of this many tokens, then the parts' summaries"
        " (map-reduce): the memory and the prompt of one step stay bounded.",
    )
    model_store: Path = Field(default_factory=_default_model_store, description="Local pack store / cache.")
    baked_packs: Path | None = Field(
        default=None,
        description="A directory of packs (NAME/VERSION) baked into the image (`scripts/build_image TASK"
        " --with-packs`): a pack found there is verified by sha256 and used instead of being fetched.",
    )
    eager_load: bool = Field(default=False, description="Load models at start-up; readiness waits for it.")
    pack_prefetch: bool = Field(
        default=False,
        description="On Lambda with DOCFN_EAGER_LOAD: fetch s3:// packs in a separate process started"
        " first thing in the entry point, overlapping the imports (docfn.cloud.prefetch). Off by default:"
        " it needs an idle second core, and on this shared machine it lengthened the cold start.",
    )
    build_packs: bool = Field(
        default_factory=lambda: not in_cloud_function(),
        description="Build a missing default pack from its wheel (laptops). Never in a deployed function:"
        " there packs come from DOCFN_MODEL_URI and DOCFN_<ROLE>_MODEL_URI only.",
    )

    redis_url: str | None = Field(default=None, description="Result cache; in-process LRU when unset.")
    redis_auth_secret_arn: str | None = Field(default=None, description="Secrets Manager ARN of the token.")
    redis_timeout_seconds: float = Field(
        default=0.5,
        gt=0,
        description="Socket and connect timeout of every Redis call: a slow Redis costs at most this.",
    )
    redis_breaker_failures: int = Field(
        default=5, ge=1, description="Consecutive Redis failures that open the cache's circuit breaker."
    )
    redis_breaker_reset_seconds: float = Field(
        default=10.0, gt=0, description="How long an open breaker skips Redis before one trial call."
    )
    memory_cache_entries: int = 256
    result_ttl_seconds: int = 86_400

    bucket: str | None = Field(default=None, description="Bucket for uploads, results and model packs.")
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (tests, MinIO).")

    max_body_bytes: int = Field(
        default_factory=_default_max_body_bytes, description="Synchronous body limit (6 MB on Lambda)."
    )
    # Asynchronous jobs (POST /v1/uploads, then an S3 event) are not bound by the payload limit.
    max_upload_bytes: int = 200 * 1024 * 1024
    upload_url_expiry_seconds: int = 900
    # A local S3 server sends no upload events: the server polls uploads/ itself (docfn serve).
    watch_uploads_seconds: float = Field(
        default=0.0, description="Poll the bucket's uploads/ prefix every N s and run new uploads; 0 = off."
    )
    # Inputs by URL (POST /v1/{task} {"url": ...}): fetched with these limits, public addresses only
    # unless a private network is listed (CIDRs, e.g. 127.0.0.0/8 on a laptop); metadata never.
    url_max_bytes: int = 50 * 1024 * 1024
    url_fetch_timeout_seconds: float = 10.0
    url_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Private networks URL inputs may reach (CIDR list); none by default.",
    )
    job_lease_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Lease of a running job's claim, renewed in the background every third of it; a job"
        " whose instance died reads failed (interrupted) once it runs out, and the next delivery runs it"
        " again. Longer than the longest page (a VLM page encode takes about 90 s).",
    )
    max_pixels: int = 60_000_000
    max_pages: int = 200
    pdf_dpi: int = 150
    # Below the 30 s that HTTP clients (the reference deployment's, API Gateway's integration) wait:
    # the caller gets this function's 504 with advice, not its own timeout with none.
    inference_timeout_seconds: float = Field(
        default=25.0, description="Deadline of a synchronous HTTP request's inference (504 beyond)."
    )
    parse_vlm_blocks: Annotated[list[str], NoDecode] | None = Field(
        default=None,
        description="Block types parse sends to the VLM (comma list of formula, table, chart; empty: none)."
        " Unset: formula,chart when DOCFN_VLM_MODEL_URI is set, else none.",
    )
    max_concurrency: int = Field(
        default=1,
        ge=0,
        description="Requests inferring at once (more wait in the queue); 0 = the CPU quota. OCR's model"
        " runs share one pool of CPU-quota threads whatever this is: one request already uses every"
        " core, and admitting more added no throughput but RSS (docs/benchmarks.md).",
    )
    max_queue: int = 8
    retry_after_seconds: int = 2

    # Browser callers from other origins (comma list, "*" for any). None by default, as in the
    # Terraform module: the page at / is same-origin, and an open default would let any web page a
    # user visits read the answers of a docfn on their machine or intranet.
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call from a browser (CORS); none by default."
    )
    cors_max_age_seconds: int = 300

    log_level: str = "INFO"
    metrics_emf: bool = Field(
        default_factory=on_lambda,
        description="Request log lines also in CloudWatch embedded metric format (on by default on Lambda).",
    )
    tracing: Literal["off", "xray", "otel"] = Field(
        default="off",
        description="Spans around cache, model load, inference, storage: xray (the X-Ray SDK; 1/true"
        " mean xray, as before), otel (OpenTelemetry over OTLP/HTTP, e.g. to an ADOT collector), or off.",
    )
    onnx_threads: int = Field(
        default=0,
        description="OCR's compute pool (single-threaded sessions, all requests share it); other tasks'"
        " intra-op threads. 0 = the container's CPU quota.",
    )

    # The VLM (task vlm, and tasks that send blocks to it): its batching queue and its chat API.
    # Lambda gives each execution environment one request at a time: what shares a batch there is the
    # crops of one many-crop request (adapters/http/vlm_crops.py), which reach the queue from their
    # threads within milliseconds of each other; 50 ms gathers them, and costs a lone crop (~5 s of
    # encode and decode, docs/benchmarks/vlm_2026-11-26.md) 1 %. Elsewhere separate requests are
    # worth waiting for.
    vlm_batch_window_ms: float = Field(
        default_factory=lambda: 50.0 if on_lambda() else 200.0,
        ge=0,
        description="A request reaching the idle VLM waits this long for others to share its prefill"
        " (requests arriving while others decode join them at the next step, without waiting; 0: no"
        " wait; 50 on Lambda, which sends an instance one request at a time: the crops of a"
        " many-crop request arrive together).",
    )
    vlm_max_batch: int = Field(default=16, ge=1, description="At most this many sequences decode together.")
    # MinerU's client sends up to 100 requests at once (max_concurrency=100): they must all find a
    # place, since the engine batches the requests waiting together. Each waiting request holds its
    # preprocessed image: about 1 MB for a block crop, up to 24 MB at the pixel budget (a page view).
    vlm_max_queue: int = Field(
        default=128,
        ge=1,
        description="Requests to the VLM an instance holds at once, waiting in its batching queue or"
        " decoding (chat completions, and the vlm, formula and chart tasks); 429 + Retry-After beyond.",
    )
    vlm_max_tokens: int = Field(
        default=4096,
        ge=1,
        description="New tokens of a VLM answer: the default and the most a request may ask.",
    )
    vlm_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="Deadline of one POST /v1/chat/completions, and of a request with several crops to"
        " the vlm, formula or chart task (504 beyond); MinerU's client waits 600 s.",
    )
    api_key: str | None = Field(
        default=None, description="Bearer token the OpenAI-compatible routes require; none by default."
    )
    api_key_secret_arn: str | None = Field(
        default=None, description="Secrets Manager ARN holding DOCFN_API_KEY (read once at start-up)."
    )

    @field_validator("tracing", mode="before")
    @classmethod
    def _tracing_choice(cls, value: object) -> object:
        # DOCFN_TRACING=1 has always meant X-Ray (Terraform sets it with Lambda active tracing).
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return "xray"
        if text in {"", "0", "false", "no", "none"}:
            return "off"
        return text

    @field_validator("tasks", "cors_allow_origins", "url_allowed_networks", "parse_vlm_blocks", mode="before")
    @classmethod
    def _split_comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(ALL_TASKS))
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; known: {list(ALL_TASKS)}")
        return value

    @field_validator("parse_vlm_blocks")
    @classmethod
    def _vlm_block_types(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted(set(value or ()) - set(VLM_BLOCK_TYPES))
        if unknown:
            raise ValueError(f"unknown VLM block type(s) {unknown}; known: {list(VLM_BLOCK_TYPES)}")
        return value

    @field_validator("url_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def setting_variables() -> frozenset[str]:
    """The environment variable of every setting: field ``x`` is ``DOCFN_X``."""
    return frozenset(f"DOCFN_{name.upper()}" for name in Settings.model_fields)


def unknown_variables(environ: Mapping[str, str]) -> dict[str, str | None]:
    """Each ``DOCFN_*`` variable in ``environ`` that no setting reads, with the closest setting's
    variable (None when none is close). Settings ignores extra variables, so without this a misspelt
    name in a ConfigMap or a Terraform map would be dropped silently."""
    known = setting_variables()
    unknown: dict[str, str | None] = {}
    for name in environ:
        upper = name.upper()  # pydantic-settings matches variable names case-insensitively
        if upper.startswith("DOCFN_") and upper not in known and upper not in NOT_SETTINGS:
            closest = difflib.get_close_matches(upper, known, n=1)
            unknown[name] = closest[0] if closest else None
    return unknown
