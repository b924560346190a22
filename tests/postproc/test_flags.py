"""Whole-scan flags (eanno_postproc.flags) on a drawn abdomen: body, spine, a pancreas in front of it."""

from __future__ import annotations

import numpy as np
import pytest
from eanno_postproc import Rules, RulesError
from eanno_postproc.flags import organ_flags, peak_share, phantom_only, scan_flags
from scipy import ndimage

SPACING = (2.0, 2.0, 2.0)
SHAPE = (120, 100, 30)  # canonical RAS: axis 0 towards the patient's right, 1 anterior, 2 superior
PHANTOM_META = {"train": {"phantom_only": True}}


def _ellipsoid(centre, radii) -> np.ndarray:
    grid = np.indices(SHAPE, dtype=np.float32)
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) <= 1.0


def abdomen(pancreas_centre=(55, 45, 15), radii=(20, 5, 5), spine=True) -> tuple[np.ndarray, np.ndarray]:
    """(CT, labels): soft-tissue body, fat, a vertebra at the back, the pancreas 60 mm in front of it."""
    ct = np.full(SHAPE, -1000, np.int16)
    body = _ellipsoid((60, 50, 15), (55, 45, 1e6))
    ct[body] = 40
    ct[_ellipsoid((60, 55, 15), (35, 25, 1e6))] = -100  # visceral fat
    if spine:
        ct[_ellipsoid((60, 15, 15), (8, 8, 1e6))] = 700
    labels = np.zeros(SHAPE, np.uint8)
    organ = _ellipsoid(pancreas_centre, radii)
    ct[organ] = 100
    labels[organ] = 1
    return ct, labels


def test_a_plausible_pancreas_has_no_flag() -> None:
    ct, labels = abdomen()
    assert organ_flags(labels, ct, SPACING, Rules.defaults().organ) == []


def test_no_pancreas_in_view() -> None:
    ct, labels = abdomen()
    flags = organ_flags(np.zeros_like(labels), ct, SPACING, Rules.defaults().organ)
    assert len(flags) == 1 and flags[0].startswith("no pancreas in view")


def test_implausible_volume_pieces_and_position_are_each_named() -> None:
    limits = Rules.defaults().organ
    ct, labels = abdomen(radii=(40, 30, 14))  # about 560 mL
    assert any("volume" in f for f in organ_flags(labels, ct, SPACING, limits))
    ct, labels = abdomen(pancreas_centre=(60, 3, 15), radii=(10, 3, 5))  # behind the spine
    assert any("in front of the spine" in f for f in organ_flags(labels, ct, SPACING, limits))
    ct, labels = abdomen(pancreas_centre=(100, 45, 15), radii=(8, 5, 5))  # 80 mm to the patient's right
    assert any("left of the spine" in f for f in organ_flags(labels, ct, SPACING, limits))
    ct, labels = abdomen()
    labels[:] = 0
    for k in range(5):  # five separate pieces of ~4 mL each
        labels[_ellipsoid((30 + 14 * k, 45, 15), (4, 4, 4))] = 1
    assert any("5 pieces" in f for f in organ_flags(labels, ct, SPACING, limits))
    ct, labels = abdomen(spine=False)
    assert organ_flags(labels, ct, SPACING, limits) == ["no spine in view: pancreas position not checked"]


def test_the_limits_come_from_the_rules() -> None:
    ct, labels = abdomen()
    strict = Rules.from_dict({"organ": {"pancreas_ml": [50, 60]}})
    assert strict.organ.max_pieces == Rules.defaults().organ.max_pieces  # the other keys keep their defaults
    assert any("volume" in f for f in organ_flags(labels, ct, SPACING, strict.organ))
    assert Rules.from_dict(strict.to_dict()) == strict
    with pytest.raises(RulesError, match="unknown key"):
        Rules.from_dict({"organ": {"pancreas_litres": [1, 2]}})
    with pytest.raises(RulesError, match="max_pieces"):
        Rules.from_dict({"organ": {"max_pieces": 0}})


def test_painted_tissues_look_like_a_phantom_and_textured_ones_do_not() -> None:
    ct, labels = abdomen()
    rng = np.random.default_rng(0)
    painted = (ct + rng.normal(0, 15, SHAPE)).astype(np.int16)  # one HU per tissue plus white noise
    # the same tissues with texture: spatially correlated variation, as real parenchyma and fat have
    texture = ndimage.gaussian_filter(rng.normal(0, 1, SHAPE), 2.0)
    textured = (painted + 40 * texture / texture.std()).astype(np.int16)
    assert peak_share(painted, SPACING) > 2 * peak_share(textured, SPACING)
    assert scan_flags(painted, labels, SPACING, meta=PHANTOM_META) == []
    flags = scan_flags(textured, labels, SPACING, meta=PHANTOM_META)
    assert len(flags) == 1 and flags[0].startswith("phantom-only model on a scan that is not a phantom")
    assert scan_flags(textured, labels, SPACING, meta={"train": {"phantom_only": False}}) == []


def test_phantom_only_reads_the_meta() -> None:
    assert phantom_only(PHANTOM_META)
    assert phantom_only({"train": {"phantoms": 60, "data": None}})  # a model from before the key
    assert not phantom_only({"train": {"phantoms": None, "data": "atlas/"}})
    assert not phantom_only(None)


def test_the_grid_does_not_change_the_verdict() -> None:
    ct, labels = abdomen()
    coarse = (slice(None, None, 2),) * 3
    spacing = tuple(2 * s for s in SPACING)
    assert organ_flags(labels[coarse], ct[coarse], spacing, Rules.defaults().organ) == []
    with pytest.raises(ValueError, match="one grid"):
        scan_flags(ct, labels[coarse], SPACING)
