"""HTTP requests: Lambda function URLs and API Gateway HTTP APIs (payload 2.0, and REST's 1.0), which
Mangum turns into ASGI calls of the same FastAPI app that uvicorn serves on Knative."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .contract import Invocation


class FunctionUrl:
    name = "http"

    def infer(self, event: Mapping[str, Any]) -> bool:
        context = event.get("requestContext")
        return isinstance(context, Mapping) and ("http" in context or "httpMethod" in event)

    def handle(self, event: Mapping[str, Any], invocation: Invocation) -> Any:
        assert invocation.http is not None, "the Lambda runtime supplies the HTTP app for HTTP events"
        headers = dict(event.get("headers") or {})
        # Lambda's request id becomes docfn's, so the response and the logs name the same request.
        if "x-request-id" not in {name.lower() for name in headers}:
            headers["x-request-id"] = invocation.request_id or ""
        response = invocation.http({**event, "headers": headers}, invocation.context)
        response.setdefault("headers", {})["x-docfn-lambda-cold"] = "1" if invocation.cold else "0"
        return response
