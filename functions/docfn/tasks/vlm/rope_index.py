"""Multimodal RoPE (M-RoPE) position ids of a Qwen2-VL prompt, in numpy.

A faithful port of transformers' ``Qwen2VLModel.get_rope_index`` for images: text tokens advance all
three axes (temporal, height, width) together; an image's merged patches take (t, row, column) offsets
from the position after the text before it; text after an image resumes at the largest position so
far + 1. ``rope_delta`` (largest position + 1 - tokens) shifts every generated token's position.
"""

from __future__ import annotations

import numpy as np

from ...core.errors import BadInput


def rope_index(
    input_ids: np.ndarray,
    grids_thw: list[tuple[int, int, int]],
    *,
    image_token_id: int,
    vision_start_token_id: int,
    merge_size: int,
) -> tuple[np.ndarray, int]:
    """Position ids [3, len(input_ids)] of one unpadded sequence, and its rope delta.

    ``grids_thw`` are the images' patch grids in prompt order; each image is one run of
    ``t * h * w / merge_size**2`` image tokens right after a ``<|vision_start|>`` token.
    """
    tokens = np.asarray(input_ids).tolist()
    starts = [i for i, tok in enumerate(tokens[:-1]) if tok == vision_start_token_id]
    image_count = sum(tokens[i + 1] == image_token_id for i in starts)
    if image_count != len(grids_thw):
        raise BadInput(f"the prompt has {image_count} images but {len(grids_thw)} were given")
    pieces: list[np.ndarray] = []
    start = 0

    def next_position() -> int:
        return int(pieces[-1].max()) + 1 if pieces else 0

    for t, h, w in grids_thw:
        end = tokens.index(image_token_id, start)
        grid_t, grid_h, grid_w = t, h // merge_size, w // merge_size
        text_len = end - start
        offset = next_position()
        pieces.append(np.broadcast_to(np.arange(text_len) + offset, (3, text_len)))
        t_index = np.repeat(np.arange(grid_t), grid_h * grid_w)
        h_index = np.tile(np.repeat(np.arange(grid_h), grid_w), grid_t)
        w_index = np.tile(np.arange(grid_w), grid_t * grid_h)
        pieces.append(np.stack([t_index, h_index, w_index]) + text_len + offset)
        start = end + grid_t * grid_h * grid_w
    if start < len(tokens):
        text_len = len(tokens) - start
        pieces.append(np.broadcast_to(np.arange(text_len) + next_position(), (3, text_len)))
    positions = np.concatenate(pieces, axis=1).astype(np.int64) if pieces else np.zeros((3, 0), np.int64)
    delta = (int(positions.max()) + 1 if positions.size else 0) - len(tokens)
    return positions, delta
