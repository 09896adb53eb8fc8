"""The container image's CMD: ``docfn.lambda_handler.handler`` (see functions/Dockerfile).

A short, stable import path for the runtime; the implementation is docfn.adapters.lambda_handler.
"""

from .adapters.lambda_handler import handler

__all__ = ["handler"]
