"""Layer 1, the ground floor: settings, errors, documents (decoding with limits), geometry, image
operations, ONNX Runtime sessions, text metrics, logs, metrics and the tracing interface. Imports no
other docfn layer and no cloud SDK."""
