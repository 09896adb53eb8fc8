"""Thin shells over the core: the HTTP app (Knative, local, Lambda via Mangum), Lambda events, CLI."""
