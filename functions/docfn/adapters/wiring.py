"""Wiring: the service with its cloud bindings, built once per process by every entry point.

The service knows only interfaces (a pack resolver, a tracer, a cache, an object store); this is the
one place that picks their implementations from the settings: S3 packs and objects through boto3,
X-Ray or OpenTelemetry as DOCFN_TRACING says, the cache auth token from Secrets Manager, and the wheel
builder for default packs only where packs may be built (never in a deployed function).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from ..cloud.s3_objects import object_store
from ..cloud.s3_packs import S3PackSource
from ..core.failsafe_tracing import start_tracer
from ..core.settings import Settings, unknown_variables
from ..core.tracing import Tracer
from ..service.cache import ResultCache, build_cache
from ..service.pack_sources import PackResolver
from ..service.service import DocService
from ..service.task_groups import GroupView, TaskGroups
from ..service.upload_jobs import UploadProcessor

log = logging.getLogger("docfn.settings")
# Variables already warned about: a process may build more than one service (docfn run, tests).
_reported: set[str] = set()


def warn_unknown_variables(environ: Mapping[str, str] | None = None) -> None:
    """Log a warning per ``DOCFN_*`` variable that is no setting, naming the closest one: the
    settings ignore it, so a misspelling would otherwise change nothing, silently."""
    for name, closest in unknown_variables(os.environ if environ is None else environ).items():
        if name in _reported:
            continue
        _reported.add(name)
        hint = f"; did you mean {closest}?" if closest else ""
        log.warning(
            "unknown setting %s ignored: docfn has no such setting%s",
            name,
            hint,
            extra={"fields": {"variable": name, "closest": closest}},
        )


def pack_resolver(settings: Settings) -> PackResolver:
    builder = None
    if settings.build_packs:
        from ..tooling.build import build_default_pack

        builder = build_default_pack
    s3 = S3PackSource(settings.model_store, endpoint_url=settings.s3_endpoint_url)
    return PackResolver(
        settings.model_store, remote={s3.scheme: s3}, builder=builder, baked=settings.baked_packs
    )


def result_cache(settings: Settings) -> ResultCache:
    password = None
    if settings.redis_url and settings.redis_auth_secret_arn:
        from ..cloud.secrets import read_secret

        password = read_secret(settings.redis_auth_secret_arn)
    return build_cache(
        settings.redis_url,
        memory_entries=settings.memory_cache_entries,
        password=password,
        timeout_seconds=settings.redis_timeout_seconds,
        breaker_failures=settings.redis_breaker_failures,
        breaker_reset_seconds=settings.redis_breaker_reset_seconds,
    )


def api_key(settings: Settings) -> str | None:
    """The Bearer key the OpenAI-compatible routes want: DOCFN_API_KEY, else read once from Secrets
    Manager (DOCFN_API_KEY_SECRET_ARN); None: no key asked."""
    if settings.api_key:
        return settings.api_key
    if settings.api_key_secret_arn:
        from ..cloud.secrets import read_secret

        return read_secret(settings.api_key_secret_arn, "the API key") or None
    return None


def tracer_for(settings: Settings) -> Tracer | None:
    """The tracer ``DOCFN_TRACING`` names, fail-safe (``docfn.core.failsafe_tracing``: a tracing SDK
    that cannot start or send logs once and steps aside); None (no spans, no SDK imported) when off."""
    if settings.tracing == "xray":

        def xray() -> Tracer:
            from ..cloud.xray import XRayTracer

            return XRayTracer()

        return start_tracer("xray", xray)
    if settings.tracing == "otel":

        def otel() -> Tracer:
            from ..cloud.otel import OTelTracer

            return OTelTracer(f"docfn-{'-'.join(settings.tasks)}" if len(settings.tasks) == 1 else "docfn")

        return start_tracer("otel", otel)
    return None


def with_secrets(settings: Settings) -> Settings:
    """The settings with the secrets they name read: the service sees a key, never where it lives."""
    if settings.summarize_url and settings.summarize_api_key_secret_arn and not settings.summarize_api_key:
        from ..cloud.secrets import read_secret

        key = read_secret(settings.summarize_api_key_secret_arn, "the summarize endpoint's API key")
        settings = settings.model_copy(update={"summarize_api_key": key})
    return settings


def build_service(
    settings: Settings, *, cache: ResultCache | None = None, tracer: Tracer | None = None
) -> DocService:
    # Every entry point (docfn serve / run, the Lambda handler, the app factory) builds its service
    # here, right after reading the settings: the one place to say what they ignored.
    warn_unknown_variables()
    settings = with_secrets(settings)
    tracer = tracer or tracer_for(settings)
    return DocService(
        settings,
        packs=pack_resolver(settings),
        cache=cache if cache is not None else result_cache(settings),
        tracer=tracer,
        bindings=bindings_for(settings),
    )


def bindings_for(settings: Settings) -> dict[str, object]:
    """The outside services tasks call, by name: summarize's LLM endpoint when one is configured."""
    if not settings.summarize_url:
        # Every function builds its service on its cold path: the endpoint's client (httpx, ~0.1 s
        # of imports) is imported only by a function that has an endpoint to call.
        return {}
    from ..cloud.llm_endpoint import LLM_WRITER, endpoint_writer

    writer = endpoint_writer(settings)
    return {LLM_WRITER: writer} if writer is not None else {}


def upload_processor(service: DocService) -> UploadProcessor:
    processor = UploadProcessor(service, object_store(service.settings), service.settings)
    task_groups(processor)  # hears its jobs end: a MinerU task's callback goes when its last one does
    return processor


def task_groups(processor: UploadProcessor) -> TaskGroups:
    """MinerU's task groups over ``processor``'s bucket, listening to the end of its jobs."""
    settings = processor.settings

    def notify(view: GroupView) -> None:
        # Imported on the first callback only: the Lambda handler's init imports this module.
        from .http.task_callback import task_notifier

        task_notifier(settings)(view)

    groups = TaskGroups(processor, notify)
    processor.on_job_end = groups.job_ended
    return groups
