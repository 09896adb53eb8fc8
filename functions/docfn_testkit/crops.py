"""Named crops of devset pages, for the block tasks (formula, chart, table) and their VLM modes."""

from __future__ import annotations

import io

from PIL import Image

from .paths import DEVSET

# Crops of devset pages (pixels at 150 dpi): the display formula and the ruled macro table of
# mathtools page 4 (001), the bytefield diagram of bytefield page 5 (010).
CROPS = {
    "formula": ("001.png", (590, 1222, 745, 1285)),
    "table": ("001.png", (296, 990, 964, 1072)),
    "figure": ("010.png", (385, 380, 985, 470)),
}


def crop_png(name: str) -> bytes:
    page, box = CROPS[name]
    out = io.BytesIO()
    Image.open(DEVSET / page).convert("RGB").crop(box).save(out, format="PNG")
    return out.getvalue()
