"""Flags by the kind of scan: phantoms (what the shipped model is for) come back clean; a real CT and a
pelvic scan (a crop of it below the pancreas) come back flagged, through the shipped model."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from eanno_postproc import Rules, refine
from eanno_postproc.flags import peak_share, scan_flags
from eanno_training.checkpoint import load_checkpoint
from eanno_training.data import Case, prepare
from eanno_training.evaluation.cases import phantom_cases
from eanno_training.predictor import Predictor

LIMIT = Rules.defaults().organ.phantom_peak_share


@pytest.fixture(scope="module")
def real_ct(real_ct_dir) -> tuple[np.ndarray, np.ndarray]:
    """The real CT (canonical) and its affine."""
    img = nib.as_closest_canonical(nib.load(real_ct_dir / "example_ct_sm.nii.gz"))
    return np.asarray(img.dataobj), img.affine


@pytest.fixture(scope="module")
def shipped() -> tuple[Predictor, dict]:
    ck = load_checkpoint()
    return Predictor(ck.build("cpu"), ck.meta), ck.meta


def _flags(predictor: Predictor, meta: dict, ct: np.ndarray, affine: np.ndarray) -> list[str]:
    """What the served path reports: predict, refine at META theta, flags on the refined labels."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    probs = predictor.predict(ct.astype(np.float32), spacing)
    res = refine(ct, probs=probs, theta=meta["theta"], affine=affine)
    return scan_flags(ct, res.labels, spacing, meta=meta)


def test_phantoms_look_like_phantoms_on_their_own_grid_and_the_model_grid() -> None:
    for case in phantom_cases(4, 31337):
        assert peak_share(case.ct, case.spacing) >= LIMIT, case.name
        coarse = prepare(Case(case.name, case.ct, None, case.affine), (2.5, 2.5, 2.5))
        assert peak_share(coarse.image, coarse.spacing) >= LIMIT, case.name


def test_a_real_ct_does_not_look_like_a_phantom_on_either_grid(real_ct) -> None:
    ct, affine = real_ct
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    assert peak_share(ct, spacing) < LIMIT
    coarse = prepare(Case("real", ct, None, affine), (2.5, 2.5, 2.5))
    assert peak_share(coarse.image, coarse.spacing) < LIMIT


@pytest.mark.slow
def test_shipped_model_flags_real_scans_and_not_phantoms(shipped, real_ct) -> None:
    predictor, meta = shipped
    for case in phantom_cases(2, 4242, spacing=(2.0, 2.0, 2.0)):
        assert _flags(predictor, meta, case.ct, case.affine) == [], case.name
    ct, affine = real_ct
    real = _flags(predictor, meta, ct, affine)
    assert any(f.startswith("phantom-only model") for f in real), real
    # standing in for a pelvic scan: a crop of the real CT without the pancreas in view (TotalSegmentator's
    # pancreas spans slices 2-19 of 30; the ten slices above it)
    crop = np.ascontiguousarray(ct[:, :, 20:])
    shifted = affine.copy()
    shifted[:3, 3] = affine[:3, :3] @ [0, 0, 20] + affine[:3, 3]
    pelvic = _flags(predictor, meta, crop, shifted)
    assert pelvic, "a scan without the pancreas in view came back unflagged"
