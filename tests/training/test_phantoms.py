"""Synthetic phantoms: determinism, anatomy in world space, intensities that agree with the labels."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from eanno_training.phantoms import ORIENTATIONS, generate_phantom
from scipy import ndimage

# The ranges the issue asks for (HU): each class's voxels must look like this in the image.
CLASS_HU = {1: (80, 120), 3: (40, 80), 4: (0, 20), 5: (100, 200)}
COARSE = (1.0, 1.0, 3.0)  # RAS spacing that keeps these tests fast


def canonical_arrays(ph):
    """The phantom's CT, labels and affine in closest-canonical (RAS) order, via nibabel."""
    ct = nib.as_closest_canonical(nib.Nifti1Image(ph.ct, ph.affine))
    lab = nib.as_closest_canonical(nib.Nifti1Image(ph.labels, ph.affine))
    return np.asarray(ct.dataobj), np.asarray(lab.dataobj), ct.affine


def test_same_seed_same_phantom_and_other_seed_differs() -> None:
    a = generate_phantom(11, spacing=COARSE, orientation="RAS")
    b = generate_phantom(11, spacing=COARSE, orientation="RAS")
    c = generate_phantom(12, spacing=COARSE, orientation="RAS")
    assert np.array_equal(a.ct, b.ct) and np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.affine, b.affine) and a.lesions == b.lesions and a.meta == b.meta
    assert a.ct.shape != c.ct.shape or not np.array_equal(a.ct, c.ct)


def test_dtypes_classes_and_affine_follow_the_request() -> None:
    ph = generate_phantom(3, spacing=(2.5, 0.7, 0.7), orientation="SPL", n_lesions=2)
    assert ph.ct.dtype == np.int16 and ph.labels.dtype == np.uint8
    assert ph.ct.shape == ph.labels.shape
    assert nib.aff2axcodes(ph.affine) == ("S", "P", "L")
    assert np.allclose(ph.spacing, (2.5, 0.7, 0.7))
    assert set(np.unique(ph.labels)) <= set(range(6))
    assert {1, 2} <= set(np.unique(ph.labels))
    assert len(ph.lesions) == 2
    for les in ph.lesions:
        assert 8.0 <= les["diameter_mm"] <= 30.0
        assert les["label"] in (3, 4, 5) and les["voxels"] > 0


def test_normal_case_has_no_lesion_labels() -> None:
    ph = generate_phantom(5, spacing=COARSE, n_lesions=0)
    assert ph.lesions == []
    assert not np.isin(ph.labels, (3, 4, 5)).any()
    assert (ph.labels == 1).sum() > 1000


def test_orientation_only_changes_storage_not_anatomy() -> None:
    """The same seed stored as RAS and as a permuted, flipped orientation is the same image in world space."""
    ras = generate_phantom(21, spacing=(0.9, 0.9, 3.0), shape=(160, 140, 40), orientation="RAS")
    other = generate_phantom(21, spacing=(3.0, 0.9, 0.9), shape=(40, 160, 140), orientation="ILP")
    assert nib.aff2axcodes(other.affine) == ("I", "L", "P")
    ct, lab, aff = canonical_arrays(other)
    assert np.allclose(aff, ras.affine)
    assert np.array_equal(ct, ras.ct) and np.array_equal(lab, ras.labels)
    assert [le["centre_world"] for le in other.lesions] == pytest.approx(
        [le["centre_world"] for le in ras.lesions]
    )


@pytest.mark.slow
def test_every_orientation_reads_back_to_the_same_canonical_image() -> None:
    """All 48 storage orientations of one seed (tiny grid): nibabel's canonical view is the RAS phantom."""
    spacing_ras, shape_ras = np.array([3.0, 3.5, 5.0]), np.array([40, 34, 14])
    ref = generate_phantom(13, spacing=spacing_ras, shape=shape_ras, orientation="RAS", n_lesions=2)
    for codes in ORIENTATIONS:
        ras_axis = [{"L": 0, "R": 0, "P": 1, "A": 1, "I": 2, "S": 2}[c] for c in codes]
        ph = generate_phantom(
            13, spacing=spacing_ras[ras_axis], shape=shape_ras[ras_axis], orientation=codes, n_lesions=2
        )
        ct, lab, aff = canonical_arrays(ph)
        assert nib.aff2axcodes(ph.affine) == codes
        assert (
            np.allclose(aff, ref.affine) and np.array_equal(ct, ref.ct) and np.array_equal(lab, ref.labels)
        ), codes


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_labels_agree_with_intensities(seed: int) -> None:
    ph = generate_phantom(seed, spacing=(0.8, 0.8, 2.0), n_lesions=3)
    ct, labels = ph.ct.astype(np.float32), ph.labels
    parenchyma = np.median(ct[labels == 1])
    lo, hi = CLASS_HU[1]
    assert lo <= parenchyma <= hi
    # the duct is fluid: darker than the parenchyma around it even after blur and partial volume
    assert np.median(ct[labels == 2]) < parenchyma - 20
    # each lesion on its own (connected components of its class), interior voxels away from the blur
    for les in ph.lesions:
        comps, _ = ndimage.label(labels == les["label"])
        centre = np.round(les["centre_voxel"]).astype(int)
        comp = comps[tuple(centre)] if comps[tuple(centre)] else np.bincount(comps[comps > 0]).argmax()
        inner = ndimage.binary_erosion(comps == comp)
        values = ct[inner if inner.sum() > 20 else comps == comp]
        lo, hi = CLASS_HU[les["label"]]
        assert lo - 3 <= np.median(values) <= hi + 3, (les, np.median(values))
        assert abs(np.median(values) - les["hu"]) < 6
    # background outside the body is air
    assert (
        np.median(ct[0]) < -900 or np.median(ct[-1]) < -900 or np.median(ct[:, 0]) < -900 or ct.min() < -900
    )


def test_noise_has_the_requested_level() -> None:
    ph = generate_phantom(8, spacing=(0.8, 0.8, 2.5), orientation="RAS", noise_hu=15.0)
    inner = ndimage.binary_erosion(ph.labels == 1, iterations=3)
    assert inner.sum() > 200
    assert 11.0 < ph.ct[inner].std() < 19.0


def test_lesions_stay_visible_at_a_coarse_model_spacing() -> None:
    ph = generate_phantom(9, spacing=(2.5, 2.5, 2.5), n_lesions=3)
    assert len(ph.lesions) == 3
    for les in ph.lesions:
        assert les["voxels"] >= 4  # an 8 mm lesion is at least a few voxels at 2.5 mm
    assert (ph.labels == 1).sum() * 2.5**3 / 1000 > 25  # pancreas of tens of mL


def test_hard_negatives_look_like_lesions_but_are_not_labelled() -> None:
    found = 0
    for seed in range(5):
        ph = generate_phantom(seed, spacing=(0.7, 0.7, 3.0), orientation="RAS", n_lesions=0)
        inv = np.linalg.inv(ph.affine)
        for neg in ph.meta["hard_negatives"]:
            v = np.round(inv[:3, :3] @ neg["centre_world"] + inv[:3, 3]).astype(int)
            if neg["kind"] == "lymph_node" and np.all(v >= 0) and np.all(v < ph.ct.shape):
                found += 1
                assert ph.labels[tuple(v)] == 0
                patch = ph.ct[v[0] - 1 : v[0] + 2, v[1] - 1 : v[1] + 2, v[2]].astype(float)
                assert 20 < np.median(patch) < 90  # PDAC-like attenuation, outside the pancreas
    assert found >= 2


def test_all_48_orientations_are_distinct_and_valid() -> None:
    assert len(set(ORIENTATIONS)) == 48
    for codes in ORIENTATIONS:
        assert sorted(c in "LR" for c in codes).count(True) == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"orientation": "XYZ"}, "orientation"),
        ({"spacing": (1.0, -1.0, 1.0)}, "spacing"),
        ({"shape": (10, 10)}, "shape"),
        ({"n_lesions": 99}, "n_lesions"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_phantom(0, **kwargs)


# What each look-alike of phantoms/lookalikes.py is labelled as, and the HU its centre shows: the median
# of the 3x3x3 voxels there (the max for small calcifications), with room for the image noise.
LOOKALIKES = {
    "renal_cyst": (0, (-40, 50)),
    "hepatic_cyst": (0, (-40, 50)),
    "splenic_lesion": (0, (15, 100)),  # below the spleen's 105-130
    "duodenal_diverticulum": (0, (-1000, 70)),  # fluid, or its gas cap
    "duct_cyst": (2, (-40, 90)),
    "calcification": (1, (250, 3071)),
}


def test_every_lookalike_occurs_labelled_as_what_it_is() -> None:
    seen: dict[str, int] = {}
    for seed in range(60):
        ph = generate_phantom(seed, spacing=(2.0, 2.0, 2.0), orientation="RAS", noise_hu=8.0)
        inv = np.linalg.inv(ph.affine)
        for neg in ph.meta["hard_negatives"]:
            if neg["kind"] not in LOOKALIKES:
                continue
            label, (lo, hi) = LOOKALIKES[neg["kind"]]
            v = np.round(inv[:3, :3] @ neg["centre_world"] + inv[:3, 3]).astype(int)
            assert ph.labels[tuple(v)] == label, (seed, neg)
            patch = ph.ct[tuple(slice(max(0, c - 1), c + 2) for c in v)].astype(float)
            hu = patch.max() if neg["kind"] == "calcification" else np.median(patch)
            assert lo <= hu <= hi, (seed, neg, hu)
            seen[neg["kind"]] = seen.get(neg["kind"], 0) + 1
        if set(seen) == set(LOOKALIKES):
            break
    assert set(seen) == set(LOOKALIKES), seen
