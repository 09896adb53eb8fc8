"""Layer 7, the top: thin entry points. The wiring that binds the service to its cloud parts, the
HTTP app (uvicorn on Knative and locally, Mangum on Lambda), Lambda event sources and the handler,
and the CLI."""
