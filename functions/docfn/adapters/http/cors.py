"""CORS on the app itself, so browser callers work wherever it runs (uvicorn, Knative, Lambda).

Off unless ``DOCFN_CORS_ALLOW_ORIGINS`` names origins (``*`` for any), as the Terraform module's
``cors.allow_origins`` (function URLs, API Gateway) is. In AWS, a CORS configuration there takes
precedence over these headers; on Knative and locally this is the only one.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from ...core.settings import Settings

# What a browser caller sends and may read: the request id, and the retry and timing headers.
ALLOWED_HEADERS = ["authorization", "content-type", "x-request-id"]
EXPOSED_HEADERS = ["retry-after", "x-request-id", "server-timing", "x-docfn-cache", "x-docfn-cold"]


def add_cors(app: FastAPI, settings: Settings) -> None:
    if not settings.cors_allow_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_allow_origins,
        allow_methods=["GET", "HEAD", "POST"],
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        allow_credentials=False,  # no cookies here; credentials with "*" would also be refused
        max_age=settings.cors_max_age_seconds,
    )
