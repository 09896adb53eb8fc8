"""The tiny random Qwen2-VL's weights are docfn's own: pinned, and independent of transformers' and
torch's initialisation (a new transformers once moved them, and with them every tiny-model figure)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from docfn.tooling.vlm_checkpoint import write_tiny_checkpoint

# sha256 of the tiny checkpoint's weights as transformers loads them (``weights_digest``). A change
# here is a new tiny model: every figure the VLM tests measured on it (the int8 agreement in
# tests/test_vlm_export_parity.py) has to be measured again, and then this pinned anew.
TINY_WEIGHTS_SHA256 = "5422bb49649e53b60643849dddeeb8dc3c8cb45f2af842755731f25fcdc835c5"


def weights_digest(checkpoint: Path) -> str:
    """Every tensor of the model ``from_pretrained`` (export-vlm's loading) makes of ``checkpoint``,
    by name in sorted order: name, dtype, shape and float32 bytes."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    model = Qwen2VLForConditionalGeneration.from_pretrained(checkpoint, dtype=torch.float32)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        values = np.ascontiguousarray(tensor.detach().numpy())
        digest.update(f"{name} {values.dtype} {values.shape}\n".encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


def test_the_tiny_weights_are_the_pinned_ones(vlm_tiny_checkpoint: Path) -> None:
    assert weights_digest(vlm_tiny_checkpoint) == TINY_WEIGHTS_SHA256


def test_the_tiny_weights_owe_nothing_to_transformers_or_torch_init(
    vlm_tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written while transformers' init fills every parameter with a constant and torch's global
    generator is seeded elsewhere, the checkpoint is still the pinned one."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLPreTrainedModel

    poison = 0.125

    def poisoned_init(self: object, module: torch.nn.Module) -> None:
        with torch.no_grad():
            for parameter in module.parameters(recurse=False):
                parameter.fill_(poison)

    checkpoint = tmp_path / "checkpoint"
    with monkeypatch.context() as patched:
        patched.setattr(Qwen2VLPreTrainedModel, "_init_weights", poisoned_init)
        # The patch reaches the model write_tiny_checkpoint builds (else this test would prove nothing).
        raw = Qwen2VLForConditionalGeneration(Qwen2VLConfig.from_pretrained(vlm_tiny_checkpoint))
        assert all(bool((p == poison).all()) for p in raw.parameters())
        torch.manual_seed(987654321)
        write_tiny_checkpoint(checkpoint)
    assert weights_digest(checkpoint) == TINY_WEIGHTS_SHA256
