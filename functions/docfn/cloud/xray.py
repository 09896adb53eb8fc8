"""X-Ray subsegments around model fetch, cache, storage and inference, when ``DOCFN_TRACING`` is on.

On Lambda (active tracing) the runtime owns the segment and we add subsegments to it. Elsewhere
(Knative with an X-Ray daemon/ADOT collector at ``AWS_XRAY_DAEMON_ADDRESS``) each request is its
own segment. The SDK is imported on the first span, never at import time (Lambda init stays short);
with tracing off the service gets ``docfn.core.tracing.NoTracer`` and the SDK is never imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..core.environment import on_lambda


class XRayTracer:
    """:class:`docfn.core.tracing.Tracer` over the AWS X-Ray SDK."""

    def __init__(self, service: str = "docfn") -> None:
        self._service = service
        self._recorder: Any = None

    @property
    def recorder(self) -> Any:
        if self._recorder is None:
            from aws_xray_sdk.core import xray_recorder

            # Never fail a request because tracing has no segment to attach to.
            xray_recorder.configure(service=self._service, context_missing="LOG_ERROR", sampling=False)
            self._recorder = xray_recorder
        return self._recorder

    @staticmethod
    def _on_lambda() -> bool:
        # Lambda's runtime (LAMBDA_TASK_ROOT) owns the segment; a Lambda-named process elsewhere does not.
        return on_lambda() and bool(os.environ.get("LAMBDA_TASK_ROOT"))

    @contextmanager
    def request(self, name: str, **annotations: str) -> Iterator[None]:
        """The request's segment (a subsegment on Lambda, where the runtime owns the segment)."""
        if self._on_lambda():
            with self.subsegment(name, **annotations):
                yield
            return
        segment = self.recorder.begin_segment(name)
        for key, value in annotations.items():
            segment.put_annotation(key, value)
        try:
            yield
        except Exception as exc:
            segment.add_exception(exc, [])
            raise
        finally:
            self.recorder.end_segment()

    def flush(self, timeout_seconds: float) -> None:
        return None  # the SDK sends each segment by UDP as it ends: nothing is buffered

    @contextmanager
    def subsegment(self, name: str, **annotations: str) -> Iterator[None]:
        with self.recorder.in_subsegment(name) as subsegment:
            if subsegment is not None:
                for key, value in annotations.items():
                    subsegment.put_annotation(key, value)
            yield
