"""The three ONNX graphs of a Qwen2-VL pack, as torch modules over a loaded transformers model.

Each wrapper calls the checkpoint's own submodules (patch embedding, LayerNorms, MLPs, the merger,
projections, RMSNorms) and writes out only what transformers computes with data-dependent Python
(per-image attention splits from ``cu_seqlens``, the KV cache object, the mask builders), so the
graphs have static control flow and explicit tensors in and out:

- ``vision``: ``pixel_values`` [patches, C*T*P*P], ``positions`` [patches, 2] (row, column of each
  patch), ``segment_ids`` [patches] (which image/frame a patch belongs to: attention stays inside it)
  -> ``image_features`` [patches / merge^2, text hidden]. Its attention is ONNX Runtime's fused
  ``MultiHeadAttention`` (``vlm_attention``).
- ``embed``: ``input_ids`` [B, S] -> ``inputs_embeds`` [B, S, hidden].
- ``decoder``: ``inputs_embeds`` [B, S, hidden], ``position_ids`` [3, B, S] (M-RoPE), ``attention_mask``
  [B, past + S] (1 = real token), ``past_key.i`` / ``past_value.i`` [B, kv_heads, past, head_dim] ->
  ``logits`` [B, vocab] of the last position, ``present_key.i`` / ``present_value.i``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .vlm_attention import VisionAttention


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class VisionGraph(nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.visual = model.model.visual
        config = model.config.vision_config
        self.heads = config.num_heads
        self.head_dim = config.embed_dim // config.num_heads

    def forward(
        self, pixel_values: torch.Tensor, positions: torch.Tensor, segment_ids: torch.Tensor
    ) -> torch.Tensor:
        visual = self.visual
        hidden = visual.patch_embed(pixel_values)
        # 2D axial rotary angles: (row freqs, column freqs) twice, as Qwen2VLVisionRotaryEmbedding.
        inv_freq = visual.rotary_pos_emb.inv_freq
        angles = positions[..., None].float() * inv_freq
        angles = torch.cat([angles[:, 0], angles[:, 1]], dim=-1)
        angles = torch.cat([angles, angles], dim=-1)[:, None, :]
        cos, sin = angles.cos(), angles.sin()
        single = segment_ids.min() == segment_ids.max()  # one image: attention needs no mask
        patches = hidden.shape[0]
        for block in visual.blocks:
            attn = block.attn
            qkv = attn.qkv(block.norm1(hidden)).reshape(patches, 3, self.heads, self.head_dim)
            q, k, v = qkv.permute(1, 0, 2, 3).unbind(0)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            q, k, v = (t.reshape(1, patches, -1) for t in (q, k, v))
            # Fused in the exported graph (vlm_attention): flash attention for a pass of one image.
            out = VisionAttention.apply(q, k, v, segment_ids, single, self.heads, attn.scaling)
            hidden = hidden + attn.proj(out[0])
            hidden = hidden + block.mlp(block.norm2(hidden))
        return visual.merger(hidden)


class EmbedGraph(nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.embed_tokens = model.model.language_model.embed_tokens

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embed_tokens(input_ids)


class DecoderGraph(nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        text = model.model.language_model
        config = model.config.text_config
        self.layers = text.layers
        self.norm = text.norm
        self.lm_head = model.lm_head
        self.inv_freq = text.rotary_emb.inv_freq
        self.mrope_section = list(config.rope_parameters["mrope_section"])
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = config.hidden_size // config.num_attention_heads

    def _mrope(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin [B, 1, S, head_dim]: each frequency band takes its axis (t, h, w) per mrope_section."""
        freqs = position_ids[..., None].float() * self.inv_freq  # [3, B, S, head_dim / 2]
        bands = freqs.split(self.mrope_section, dim=-1)
        freqs = torch.cat([band[i % 3] for i, band in enumerate(bands)], dim=-1)
        angles = torch.cat([freqs, freqs], dim=-1)[:, None]
        return angles.cos(), angles.sin()

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        position_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        *past: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        batch, length, _ = inputs_embeds.shape
        cos, sin = self._mrope(position_ids)
        total = attention_mask.shape[1]
        past_len = total - length
        query_pos = torch.arange(length)[:, None] + past_len
        causal = torch.arange(total)[None, :] <= query_pos
        allowed = causal[None, None] & attention_mask[:, None, None, :].bool()
        bias = torch.zeros(allowed.shape, dtype=inputs_embeds.dtype).masked_fill(
            ~allowed, torch.finfo(inputs_embeds.dtype).min
        )
        groups = self.heads // self.kv_heads
        hidden = inputs_embeds
        presents: list[torch.Tensor] = []
        for index, layer in enumerate(self.layers):
            attn = layer.self_attn
            normed = layer.input_layernorm(hidden)
            q = attn.q_proj(normed).view(batch, length, self.heads, self.head_dim).transpose(1, 2)
            k = attn.k_proj(normed).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
            v = attn.v_proj(normed).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            k = torch.cat([past[2 * index], k], dim=2)
            v = torch.cat([past[2 * index + 1], v], dim=2)
            presents += [k, v]
            k_all = k.repeat_interleave(groups, dim=1)
            v_all = v.repeat_interleave(groups, dim=1)
            weights = torch.softmax(q @ k_all.transpose(2, 3) * attn.scaling + bias, dim=-1)
            out = (weights @ v_all).transpose(1, 2).reshape(batch, length, -1)
            hidden = hidden + attn.o_proj(out)
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        logits = self.lm_head(self.norm(hidden[:, -1, :]))
        return (logits, *presents)
