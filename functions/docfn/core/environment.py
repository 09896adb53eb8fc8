"""Where this process runs, read from the variables each platform sets (no SDK, no network).

Lambda sets ``AWS_LAMBDA_FUNCTION_NAME`` (and ``LAMBDA_TASK_ROOT`` inside its managed runtimes and
images built on them); Knative Serving sets ``K_SERVICE`` on every container it runs.
"""

from __future__ import annotations

import os


def on_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def on_knative() -> bool:
    return bool(os.environ.get("K_SERVICE"))


def in_cloud_function() -> bool:
    """A deployed function (not a laptop): packs come from S3 only and nothing is built locally."""
    return on_lambda() or on_knative()
