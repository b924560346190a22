"""Phantoms against the post-processing rules: true lesions survive them, duct look-alikes do not."""

from __future__ import annotations

import numpy as np
import pytest
from eanno_postproc import refine
from eanno_training.data import Prepared, phantom_cases

MODEL_MM = (2.5, 2.5, 2.5)


@pytest.fixture(scope="module")
def cases() -> list[Prepared]:
    return phantom_cases(6, 17, MODEL_MM, n_lesions=1)


def test_ground_truth_lesions_pass_every_rule_at_the_model_spacing(cases: list[Prepared]) -> None:
    """A perfect prediction must come out of the post-processing unchanged, or sensitivity has a ceiling."""
    for c in cases:
        res = refine(c.image.astype(np.int16), c.labels, affine=c.affine)
        decisions = [les["decision"] for les in res.report["lesions"]]
        assert decisions == ["kept"] * len(c.meta["lesions"]), (c.name, res.report["lesions"])
        assert np.array_equal(res.labels, c.labels) and not res.removed.any()


def test_a_dilated_duct_called_a_cyst_is_relabelled_by_the_duct_rule(cases: list[Prepared]) -> None:
    """The hard negative 'duct dilation' is fluid inside the pancreas; a model calling it a cyst is corrected."""
    checked = 0
    for c in cases:
        inv = np.linalg.inv(c.affine)
        grid = np.stack(np.meshgrid(*[np.arange(n) for n in c.labels.shape], indexing="ij"), -1)
        for neg in c.meta["hard_negatives"]:
            if neg["kind"] != "duct_dilation":
                continue
            centre = inv[:3, :3] @ neg["centre_world"] + inv[:3, 3]
            near = np.linalg.norm((grid - centre) * MODEL_MM, axis=-1) <= neg["size_mm"] / 2 + 2.5
            fake = near & (c.labels == 2)
            if fake.sum() < 2:
                continue
            wrong = c.labels.copy()
            wrong[fake] = 4
            res = refine(c.image.astype(np.int16), wrong, affine=c.affine)
            called = [
                les
                for les in res.report["lesions"]
                if les["class"] == "pancreatic_cyst" and les["voxels"] <= fake.sum()
            ]
            assert called and all(les["decision"] == "relabelled_duct" for les in called), res.report[
                "lesions"
            ]
            assert not (res.labels == 4)[fake].any()
            checked += 1
    assert checked >= 2
