"""PP-OCR text detection (DB), optional angle classification, and CTC recognition on ONNX Runtime."""
