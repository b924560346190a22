"""Properties that hold for every input (hypothesis), and agreement with the scipy baseline."""

from __future__ import annotations

from collections import Counter
from unittest import mock

import eanno_postproc.components as components
import eanno_postproc.pipeline as pipeline
import numpy as np
import pytest
from eanno_postproc import Rules, refine
from eanno_postproc.inputs import labels_from_probs
from eanno_postproc.synthetic import make_case
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

shapes = st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 7))


@st.composite
def scenes(draw):
    """A small label map biased towards pancreas and lesions, a CT, a connectivity and a dilation."""
    shape = draw(shapes)
    weights = draw(st.lists(st.integers(0, 6), min_size=6, max_size=6).filter(any))
    choices = np.repeat(np.arange(6, dtype=np.uint8), weights)
    idx = draw(arrays(np.int64, shape, elements=st.integers(0, len(choices) - 1)))
    labels = choices[idx]
    ct = draw(arrays(np.int16, shape, elements=st.integers(-1100, 1100)))
    connectivity = draw(st.sampled_from([6, 18, 26]))
    rules = Rules.from_dict(
        {"connectivity": connectivity, "pancreas_dilation_voxels": draw(st.integers(1, 2))}
    )
    return ct, labels, rules


PROPERTY = settings(max_examples=150, deadline=None)


@PROPERTY
@given(scenes())
def test_output_classes_are_the_inputs_plus_background_and_pancreas(scene) -> None:
    ct, labels, rules = scene
    res = refine(ct, labels, rules=rules)
    assert set(np.unique(res.labels)) <= set(np.unique(labels)) | {0, 1}


@PROPERTY
@given(scenes())
def test_lesion_voxels_never_grow(scene) -> None:
    ct, labels, rules = scene
    res = refine(ct, labels, rules=rules)
    assert np.count_nonzero(res.labels >= 3) <= np.count_nonzero(labels >= 3)
    for c in (3, 4, 5):
        assert np.all(labels[res.labels == c] == c)  # a kept lesion voxel was that lesion before


@PROPERTY
@given(scenes())
def test_refining_a_refined_map_changes_nothing(scene) -> None:
    ct, labels, rules = scene
    once = refine(ct, labels, rules=rules)
    twice = refine(ct, once.labels, rules=rules)
    assert np.array_equal(once.labels, twice.labels)
    assert not twice.removed.any()


@PROPERTY
@given(scenes())
def test_refined_plus_removed_reconstructs_the_candidates(scene) -> None:
    ct, labels, rules = scene
    res = refine(ct, labels, rules=rules)
    restored = np.where(res.removed > 0, res.removed, res.labels)
    assert np.array_equal(restored, labels)
    assert np.all(labels[res.removed > 0] >= 3)  # only candidates are ever removed or relabelled
    n_changed = sum(x["voxels"] for x in res.report["lesions"] if x["decision"] != "kept")
    assert n_changed == np.count_nonzero(res.removed)


@PROPERTY
@given(scenes(), st.sampled_from([np.float16, np.float32]), st.integers(0, 2**32 - 1))
def test_probabilities_refine_like_their_step_0_map(scene, dtype, seed) -> None:
    ct, labels, rules = scene
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(6, 0.3), size=labels.shape).astype(np.float32)
    p = np.moveaxis(p / p.sum(axis=-1, keepdims=True), -1, 0).astype(dtype)
    theta = float(rng.choice([0.003, 0.05, 0.3]))
    from_probs = refine(ct, probs=p, theta=theta, rules=rules)
    from_map = refine(ct, labels_from_probs(p, theta), rules=rules)
    assert np.array_equal(from_probs.labels, from_map.labels)
    assert np.array_equal(from_probs.removed, from_map.removed)
    expected = np.argmax(p[:3].astype(np.float64), axis=0)
    lesion = p[3:].astype(np.float64)
    expected = np.where(lesion.max(axis=0) >= theta, np.argmax(lesion, axis=0) + 3, expected)
    assert np.array_equal(labels_from_probs(p, theta), expected)


@PROPERTY
@given(scenes())
def test_agrees_with_the_scipy_baseline(baseline, scene) -> None:
    """On every scene, through both measuring paths (voxel list, and each component in its box)."""
    ct, labels, rules = scene
    out, removed, decisions = baseline.baseline_refine(ct, labels, rules=rules.to_dict())
    for small in (pipeline.SMALL_VOXELS, 0):
        with mock.patch.object(pipeline, "SMALL_VOXELS", small):
            res = refine(ct, labels, rules=rules)
        assert np.array_equal(res.labels, out) and np.array_equal(res.removed, removed)
        assert Counter((x["class_id"], x["decision"]) for x in res.report["lesions"]) == Counter(decisions)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("connectivity", [6, 26])
def test_both_measuring_paths_agree_with_each_other_and_the_baseline(
    baseline, monkeypatch, seed, connectivity
) -> None:
    """Small components measured together, large ones in boxes, or every one from find_objects: same report."""
    case = make_case(seed=seed, n_candidates=18, probs_dtype=np.float16, speckles=200)
    rules = Rules.from_dict({"connectivity": connectivity})
    reports = []
    for small, dense in ((256, 0.1), (0, 0.1), (10**9, 0.1), (256, 0.0)):
        monkeypatch.setattr(pipeline, "SMALL_VOXELS", small)
        monkeypatch.setattr(components, "DENSE_FRACTION", dense)
        res = refine(case.ct, probs=case.probs, affine=case.affine, rules=rules)
        out, removed, decisions = baseline.baseline_refine(case.ct, probs=case.probs, rules=rules.to_dict())
        assert np.array_equal(res.labels, out) and np.array_equal(res.removed, removed)
        assert Counter((x["class_id"], x["decision"]) for x in res.report["lesions"]) == Counter(decisions)
        reports.append(res.report)
    for other in reports[1:]:
        assert len(other["lesions"]) == len(reports[0]["lesions"])
        for a, b in zip(other["lesions"], reports[0]["lesions"], strict=True):
            for key, value in a.items():
                if isinstance(value, float | list) and key != "bbox_voxel":
                    assert value == pytest.approx(b[key]), key
                else:
                    assert value == b[key], key
