"""What docfn's tests and benchmarks share: the repository's own test data, real servers on loopback
(redis-server, moto's S3 server, ``docfn serve``), generated documents with known contents, and the
function images run with podman. Never shipped in a function image (functions/Dockerfile copies
``functions/docfn`` only); tests/ and scripts/ import from here, never from each other."""
