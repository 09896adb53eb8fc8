"""Layer 4: the service that hosts tasks: the page loop, readiness, admission, the result cache,
pack resolution, asynchronous jobs and their storage layout, the request log. Knows interfaces
(object store, pack sources, tracer), never a cloud SDK."""
