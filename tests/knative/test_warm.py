"""Paying for warmth on Knative: the `warm` component (knative/components/warm), rendered with the
real kustomize over the dev and prod overlays, keeps one pod per Service (min-scale and
initial-scale 1) and changes nothing else, so every other check of tests/knative/test_manifests.py
on those overlays still holds for the warm render."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from docfn_testkit.knative import KNATIVE, KUSTOMIZATIONS, Doc, ksvcs
from docfn_testkit.kustomize import kustomize_build

WARM = KNATIVE / "components" / "warm"
MIN_SCALE = "autoscaling.knative.dev/min-scale"
INITIAL_SCALE = "autoscaling.knative.dev/initial-scale"
MAX_SCALE = "autoscaling.knative.dev/max-scale"


def with_warm(overlay: Path, scratch: Path) -> list[Doc]:
    """The overlay plus the component, as a user's kustomization would add it (kustomize only
    accepts relative paths)."""
    (scratch / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {os.path.relpath(overlay, scratch)}\n"
        f"components:\n  - {os.path.relpath(WARM, scratch)}\n"
    )
    return kustomize_build(scratch)


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_warm_keeps_one_pod_per_service_and_changes_nothing_else(name: str, tmp_path: Path) -> None:
    plain = kustomize_build(KUSTOMIZATIONS[name])
    warm = with_warm(KUSTOMIZATIONS[name], tmp_path)
    services = ksvcs(warm)
    assert set(services) == set(ksvcs(plain)) and services
    for svc in services.values():
        ann = svc["spec"]["template"]["metadata"]["annotations"]
        assert ann[MIN_SCALE] == "1" and ann[INITIAL_SCALE] == "1"
        # What Knative's validation asks of these bounds: integers, min <= max, initial >= 0.
        assert 0 <= int(ann[MIN_SCALE]) <= int(ann[MAX_SCALE])
        assert 0 <= int(ann[INITIAL_SCALE]) <= int(ann[MAX_SCALE])
    # Everything else is exactly the overlay's (already validated by test_manifests.py).
    undone = copy.deepcopy(warm)
    by_name = ksvcs(plain)
    for svc in ksvcs(undone).values():
        ann = svc["spec"]["template"]["metadata"]["annotations"]
        before = by_name[svc["metadata"]["name"]]["spec"]["template"]["metadata"]["annotations"]
        ann[MIN_SCALE], ann[INITIAL_SCALE] = before[MIN_SCALE], before[INITIAL_SCALE]
    assert undone == plain


def test_the_overlays_scale_to_zero_without_it() -> None:
    for name in ("base", "dev", "prod"):
        for svc in ksvcs(kustomize_build(KUSTOMIZATIONS[name])).values():
            assert svc["spec"]["template"]["metadata"]["annotations"][MIN_SCALE] == "0"
