"""MinerU2.5's two-step protocol, as its client (``mineru-vl-utils``) speaks it: the prompts, the
sampling knobs per block type, the layout answer's grammar, and how a block becomes a crop.

Step one: the page, resized to 1036 x 1036, with "\\nLayout Detection:". The answer lists blocks in
reading order, each ``<|box_start|>x1 y1 x2 y2<|box_end|><|ref_start|>type<|ref_end|>`` on a 0-1000
grid of the page, optionally followed by a rotation token (``<|rotate_right|>``: the block's text
runs rotated) and, for text, ``txt_contd_tgt`` (it continues the previous text block). Step two:
each block cropped from the page at full resolution and recognised with its type's prompt.
Answers keep special tokens (the tags are special tokens), as MinerU's client asks the server.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from PIL import Image

from .sampling import SamplingKnobs

LAYOUT_SIZE = (1036, 1036)
LAYOUT_PROMPT = "\nLayout Detection:"
TEXT_PROMPT = "\nText Recognition:"
PROMPTS = {
    "table": "\nTable Recognition:",
    "equation": "\nFormula Recognition:",
    "image": "\nImage Analysis:",
    "chart": "\nImage Analysis:",
}
# MinerU's defaults (greedy: temperature 0, top_k 1; an n-gram of 100 tokens never repeats).
LAYOUT_KNOBS = SamplingKnobs(no_repeat_ngram_size=100)
_BLOCK_KNOBS = SamplingKnobs(presence_penalty=1.0, frequency_penalty=0.05, no_repeat_ngram_size=100)
KNOBS = {
    "table": SamplingKnobs(presence_penalty=1.0, frequency_penalty=0.005, no_repeat_ngram_size=100),
}
# The block types of MinerU2.5's layout answer (mineru-vl-utils 2.x).
BLOCK_TYPES = frozenset(
    {
        "text", "title", "doc_title", "paragraph_title", "table", "equation", "formula_number",
        "code", "algorithm", "aside_text", "ref_text", "index", "phonetic", "list_item",
        "caption", "table_caption", "image_caption", "code_caption", "footnote", "table_footnote",
        "image_footnote", "header", "footer", "page_number", "page_footnote", "image", "chart",
        "list", "image_block", "equation_block", "unknown",
    }
)  # fmt: skip
# Containers: their members are recognised one by one, the container itself is not.
CONTAINERS = frozenset({"list", "equation_block", "image_block"})
ROTATIONS = {"<|rotate_up|>": 0, "<|rotate_right|>": 90, "<|rotate_down|>": 180, "<|rotate_left|>": 270}
# Crops: at least this many pixels on the short side, and at most this aspect ratio (MinerU's).
MIN_EDGE = 28
MAX_EDGE_RATIO = 50.0

_BLOCK = re.compile(
    r"<\|box_start\|>\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*<\|box_end\|>"
    r"<\|ref_start\|>\s*(\w+?)\s*<\|ref_end\|>(.*?)(?=<\|box_start\|>|$)",
    re.DOTALL,
)


@dataclass(frozen=True)
class LayoutBlock:
    type: str
    bbox: tuple[float, float, float, float]  # fractions of the page's width and height, 0-1
    angle: int = 0  # degrees the content is rotated (the crop is turned back before recognition)
    continues: bool = False  # text that continues the previous text block (another column)


def prompt_for(block_type: str) -> str:
    return PROMPTS.get(block_type, TEXT_PROMPT)


def knobs_for(block_type: str) -> SamplingKnobs:
    return KNOBS.get(block_type, _BLOCK_KNOBS)


def _bbox(values: tuple[str, ...]) -> tuple[float, float, float, float] | None:
    x1, y1, x2, y2 = (int(v) for v in values)
    if any(v > 1000 for v in (x1, y1, x2, y2)):
        return None
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    if x1 == x2 or y1 == y2:
        return None
    return (x1 / 1000, y1 / 1000, x2 / 1000, y2 / 1000)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def parse_layout(answer: str) -> list[LayoutBlock]:
    """The blocks of a layout answer, in its (reading) order. What does not parse is skipped: a box
    off the grid or of no area, an unknown type, an inline formula (read with its text), a
    near-duplicate (IoU > 0.9 with an earlier block of the same type), and any text around the
    blocks (a truncated answer keeps its complete blocks)."""
    blocks: list[LayoutBlock] = []
    for match in _BLOCK.finditer(answer):
        *coords, kind, tail = match.groups()
        bbox = _bbox(tuple(coords))
        kind = kind.lower()
        kind = "image" if kind == "unknown" else kind
        if bbox is None or kind not in BLOCK_TYPES:
            continue
        angle = next((a for token, a in ROTATIONS.items() if token in tail), 0)
        block = LayoutBlock(kind, bbox, angle, kind == "text" and "txt_contd_tgt" in tail)
        if any(b.type == kind and _iou(b.bbox, bbox) > 0.9 for b in blocks):
            continue
        blocks.append(block)
    return blocks


def layout_view(page: Image.Image) -> Image.Image:
    """The page as the layout step sees it (aspect ratio not kept: boxes are fractions anyway)."""
    return page.convert("RGB").resize(LAYOUT_SIZE, Image.Resampling.BICUBIC)


def pixel_box(block: LayoutBlock, width: int, height: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = block.bbox
    return (
        math.floor(x1 * width),
        math.floor(y1 * height),
        max(math.floor(x1 * width) + 1, math.ceil(x2 * width)),
        max(math.floor(y1 * height) + 1, math.ceil(y2 * height)),
    )


def block_crop(page: Image.Image, block: LayoutBlock) -> Image.Image:
    """The block cut from the full-resolution page, turned upright, sized for the vision encoder."""
    crop = page.convert("RGB").crop(pixel_box(block, page.width, page.height))
    if block.angle:
        crop = crop.rotate(block.angle, expand=True)
    return fit_for_vision(crop)


def fit_for_vision(image: Image.Image) -> Image.Image:
    """Pad a very long strip to the largest aspect ratio (white, centred) and scale a tiny crop up
    to the smallest edge, as MinerU's client does before sending a block."""
    image = image.convert("RGB")
    width, height = image.size
    if max(width, height) / min(width, height) > MAX_EDGE_RATIO:
        size = (width, math.ceil(width / MAX_EDGE_RATIO)) if width > height else (
            math.ceil(height / MAX_EDGE_RATIO), height)  # fmt: skip
        canvas = Image.new("RGB", size, (255, 255, 255))
        canvas.paste(image, ((size[0] - width) // 2, (size[1] - height) // 2))
        image = canvas
    if min(image.size) < MIN_EDGE:
        scale = MIN_EDGE / min(image.size)
        image = image.resize(
            (math.ceil(image.width * scale), math.ceil(image.height * scale)), Image.Resampling.BICUBIC
        )
    return image
