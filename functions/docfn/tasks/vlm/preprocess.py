"""Qwen2-VL image preprocessing in numpy: smart resize, normalisation and the flattened patch layout.

Ported from transformers' ``Qwen2VLImageProcessor`` (the PIL path): the image is resized with bicubic
resampling so both sides are multiples of ``patch_size * merge_size`` (28) and the pixel count lies
within ``[min_pixels, max_pixels]``; rescaled to [0, 1], normalised with the CLIP mean/std, repeated
to ``temporal_patch_size`` frames, and cut into patches ordered so each 2x2 merge window is
contiguous (the vision tower's merger concatenates four consecutive patches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ...core.errors import BadInput

# Qwen2-VL's image processor defaults (preprocessor_config.json of Qwen2-VL and MinerU2.5).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_ASPECT_RATIO = 200


@dataclass(frozen=True)
class ProcessorConfig:
    """The pack's processor settings (``processor`` in the manifest's config)."""

    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ProcessorConfig:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for key in ("image_mean", "image_std"):
            if key in fields:
                fields[key] = tuple(float(v) for v in fields[key])  # type: ignore[attr-defined]
        return cls(**fields)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items()}


@dataclass(frozen=True)
class VisionInput:
    """One image as the vision encoder takes it: ``pixel_values`` [patches, C*T*P*P] and its grid."""

    pixel_values: np.ndarray
    grid_thw: tuple[int, int, int]
    merge_size: int

    @property
    def merged_tokens(self) -> int:
        """How many ``<|image_pad|>`` tokens (merged patches) the image becomes in the prompt."""
        t, h, w = self.grid_thw
        return t * h * w // self.merge_size**2


def smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280
) -> tuple[int, int]:
    """Both sides multiples of ``factor``, the area within the bounds, the aspect ratio kept."""
    if min(height, width) < 1:
        raise BadInput(f"image of {width}x{height} pixels is empty")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise BadInput(
            f"image of {width}x{height} pixels has an aspect ratio above {MAX_ASPECT_RATIO}, "
            "which the vision encoder does not take"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def patchify(frames: np.ndarray, config: ProcessorConfig) -> VisionInput:
    """``frames`` [T, C, H, W] (normalised) into flattened patches, each merge window contiguous."""
    temporal, patch, merge = config.temporal_patch_size, config.patch_size, config.merge_size
    if frames.shape[0] % temporal:
        repeat = np.repeat(frames[-1:], temporal - frames.shape[0] % temporal, axis=0)
        frames = np.concatenate([frames, repeat], axis=0)
    channels, height, width = frames.shape[1:]
    grid_t, grid_h, grid_w = frames.shape[0] // temporal, height // patch, width // patch
    patches = frames.reshape(
        grid_t, temporal, channels, grid_h // merge, merge, patch, grid_w // merge, merge, patch
    )
    patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    flat = patches.reshape(grid_t * grid_h * grid_w, channels * temporal * patch * patch)
    return VisionInput(np.ascontiguousarray(flat, dtype=np.float32), (grid_t, grid_h, grid_w), merge)


def preprocess(image: Image.Image, config: ProcessorConfig) -> VisionInput:
    """A PIL image (any mode) into the vision encoder's input."""
    rgb = image.convert("RGB")
    height, width = smart_resize(rgb.height, rgb.width, config.factor, config.min_pixels, config.max_pixels)
    if (height, width) != (rgb.height, rgb.width):
        rgb = rgb.resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(rgb, dtype=np.float32) / 255.0
    mean = np.asarray(config.image_mean, dtype=np.float32)
    std = np.asarray(config.image_std, dtype=np.float32)
    normalised = ((pixels - mean) / std).transpose(2, 0, 1)
    return patchify(normalised[None], config)


def vision_positions(grid_thw: tuple[int, int, int], merge_size: int) -> np.ndarray:
    """Each patch's (row, column) in its image [patches, 2], in the merge-window order of ``patchify``:
    the vision tower's 2D rotary embedding (transformers' ``rot_pos_emb``)."""
    t, h, w = grid_thw
    rows = np.broadcast_to(np.arange(h)[:, None], (h, w))
    cols = np.broadcast_to(np.arange(w)[None, :], (h, w))

    def windowed(ids: np.ndarray) -> np.ndarray:
        return ids.reshape(h // merge_size, merge_size, w // merge_size, merge_size).transpose(0, 2, 1, 3)

    pairs = np.stack([windowed(rows).reshape(-1), windowed(cols).reshape(-1)], axis=-1)
    return np.tile(pairs, (t, 1)).astype(np.int64)
