"""AbdomenAtlas reading: round trips through the writer, world positions, the real CT, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from eanno_training.data import (
    DataError,
    load_label_table,
    prepare,
    read_atlas_case,
    read_case,
    read_class_map,
)
from eanno_training.phantoms import generate_phantom, generate_phantom_set, write_atlas_case
from scipy import ndimage


def world(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    """Voxel index -> world mm."""
    return affine[:3, :3] @ ijk + affine[:3, 3]


@pytest.mark.parametrize("orientation", ["LPS", "SAR", "PIL"])
def test_lesion_world_centres_survive_write_and_canonical_read(tmp_path: Path, orientation: str) -> None:
    ph = generate_phantom(
        31,
        spacing=(1.0, 1.0, 2.5)[:: 1 if orientation[2] in "SI" else -1],
        orientation=orientation,
        n_lesions=3,
    )
    case = read_atlas_case(write_atlas_case(ph, tmp_path / "case"))
    assert nib.aff2axcodes(case.affine) == ("R", "A", "S")
    comps, n = ndimage.label(np.isin(case.labels, (3, 4, 5)))
    centres = [
        world(case.affine, np.array(c)) for c in ndimage.center_of_mass(comps > 0, comps, range(1, n + 1))
    ]
    assert n == len(ph.lesions) == 3
    for les in ph.lesions:
        d = [np.linalg.norm(c - les["centre_world"]) for c in centres]
        k = int(np.argmin(d))
        assert d[k] < 1e-3, (les, centres)
        assert set(np.unique(case.labels[comps == k + 1])) == {les["label"]}
        assert (comps == k + 1).sum() == les["voxels"]
        # and the stored voxel centre maps to the same world point through the stored affine
        assert np.allclose(world(ph.affine, np.array(les["centre_voxel"])), les["centre_world"], atol=1e-2)


def test_round_trip_files_and_both_label_sources(tmp_path: Path) -> None:
    ph = generate_phantom(4, spacing=(0.9, 0.9, 3.0), orientation="LAS", n_lesions=2)
    folder = write_atlas_case(ph, tmp_path / "c")
    names = sorted(p.name for p in (folder / "segmentations").iterdir())
    assert names == sorted(
        f"{n}.nii.gz"
        for n in [
            "pancreas",
            "pancreatic_duct",
            "pancreatic_pdac",
            "pancreatic_cyst",
            "pancreatic_pnet",
            "pancreatic_lesion",
        ]
    )
    ct_img = nib.load(folder / "ct.nii.gz")
    assert ct_img.get_data_dtype() == np.int16
    assert np.allclose(ct_img.get_qform(), ph.affine) and np.allclose(ct_img.get_sform(), ph.affine)
    organ = np.asarray(nib.load(folder / "segmentations" / "pancreas.nii.gz").dataobj)
    assert np.array_equal(organ > 0, ph.labels > 0)  # the whole organ, as in AbdomenAtlas
    union = np.asarray(nib.load(folder / "segmentations" / "pancreatic_lesion.nii.gz").dataobj)
    assert np.array_equal(union > 0, ph.labels >= 3)
    a = read_atlas_case(folder, source="segmentations")
    b = read_atlas_case(folder, source="combined")
    expected = nib.as_closest_canonical(nib.Nifti1Image(ph.labels, ph.affine))
    assert np.array_equal(a.labels, np.asarray(expected.dataobj))
    assert np.array_equal(a.labels, b.labels)
    assert a.image.dtype == np.int16
    assert np.array_equal(
        a.image, np.asarray(nib.as_closest_canonical(nib.Nifti1Image(ph.ct, ph.affine)).dataobj)
    )
    assert a.meta["lesions"] == json.loads(json.dumps(ph.lesions))
    assert list(tmp_path.iterdir()) == [folder]  # no temporary folder left behind


def test_writer_refuses_to_clobber_unless_asked(tmp_path: Path) -> None:
    ph = generate_phantom(2, shape=(40, 40, 12), spacing=(2.0, 2.0, 4.0))
    folder = write_atlas_case(ph, tmp_path / "c")
    with pytest.raises(FileExistsError, match="exists"):
        write_atlas_case(ph, folder)
    other = generate_phantom(3, shape=(40, 40, 12), spacing=(2.0, 2.0, 4.0))
    write_atlas_case(other, folder, overwrite=True)
    assert np.array_equal(np.asarray(nib.load(folder / "ct.nii.gz").dataobj), other.ct)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ph = generate_phantom(2, shape=(30, 30, 10), spacing=(2.0, 2.0, 4.0))
    real_save, calls = nib.save, []

    def failing_save(img, path):  # the disk fills up on the fourth file
        calls.append(path)
        if len(calls) == 4:
            raise OSError("No space left on device")
        real_save(img, path)

    monkeypatch.setattr(nib, "save", failing_save)
    with pytest.raises(OSError, match="No space"):
        write_atlas_case(ph, tmp_path / "c")
    assert list(tmp_path.iterdir()) == []


def test_phantom_set_is_deterministic_and_indexed(tmp_path: Path) -> None:
    a = generate_phantom_set(tmp_path / "a", 2, 5, spacing=(2.0, 2.0, 4.0))
    b = generate_phantom_set(tmp_path / "b", 2, 5, spacing=(2.0, 2.0, 4.0))
    index = json.loads((tmp_path / "a" / "phantoms.json").read_text())
    assert [c["case"] for c in index["cases"]] == ["phantom_0000", "phantom_0001"]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(
            np.asarray(nib.load(x / "ct.nii.gz").dataobj), np.asarray(nib.load(y / "ct.nii.gz").dataobj)
        )


def test_missing_and_mismatched_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"ct\.nii\.gz: file not found"):
        read_atlas_case(tmp_path / "empty")
    ph = generate_phantom(2, shape=(30, 30, 10), spacing=(2.0, 2.0, 4.0), orientation="RAS")
    folder = write_atlas_case(ph, tmp_path / "c")
    flipped = np.diag([-2.0, 2.0, 4.0, 1.0])
    nib.save(nib.Nifti1Image(ph.labels, flipped), folder / "segmentations" / "pancreatic_duct.nii.gz")
    with pytest.raises(DataError, match=r"pancreatic_duct\.nii\.gz: affine differs"):
        read_atlas_case(folder)
    nib.save(nib.Nifti1Image(ph.labels[:-1], ph.affine), folder / "combined_labels.nii.gz")
    with pytest.raises(DataError, match=r"combined_labels\.nii\.gz: shape"):
        read_atlas_case(folder, source="combined")
    nib.save(
        nib.Nifti1Image(ph.labels.astype(np.float32) + 0.5, ph.affine), folder / "combined_labels.nii.gz"
    )
    with pytest.raises(DataError, match="not integers"):
        read_atlas_case(folder, source="combined")
    (folder / "bad.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(DataError, match=r"bad\.nii\.gz: not a readable NIfTI"):
        read_case(folder / "bad.nii.gz")


def test_real_ct_through_the_reader_with_the_totalsegmentator_table(
    real_ct_dir: Path, tmp_path: Path
) -> None:
    class_map = read_class_map(real_ct_dir / "totalseg_total_class_map.json")
    assert class_map[7] == "pancreas"
    table = load_label_table("totalsegmentator")
    case = read_case(
        real_ct_dir / "example_ct_sm.nii.gz",
        real_ct_dir / "example_ct_sm_seg_total.nii.gz",
        table=table,
        class_map=class_map,
    )
    raw = np.asarray(
        nib.as_closest_canonical(nib.load(real_ct_dir / "example_ct_sm_seg_total.nii.gz")).dataobj
    )
    assert set(np.unique(case.labels)) == {0, 1}
    assert np.array_equal(case.labels == 1, raw == 7)
    assert (case.labels == 1).sum() == 644  # the README's count for this scan
    assert case.image.dtype == np.int16 and case.spacing == pytest.approx((3.0, 3.0, 3.0))
    assert nib.aff2axcodes(case.affine) == ("R", "A", "S")
    # real tissue statistics: a non-contrast scan at 3 mm, the pancreas partly fatty (median about -7 HU),
    # well between fat and enhanced parenchyma; air outside the body
    assert -100 < np.median(case.image[case.labels == 1]) < 100
    assert case.image.min() < -900
    # the same files laid out as an AbdomenAtlas case with a combined label map
    folder = tmp_path / "real"
    folder.mkdir()
    shutil.copy(real_ct_dir / "example_ct_sm.nii.gz", folder / "ct.nii.gz")
    shutil.copy(real_ct_dir / "example_ct_sm_seg_total.nii.gz", folder / "combined_labels.nii.gz")
    atlas = read_atlas_case(folder, table=table, class_map=class_map)
    assert np.array_equal(atlas.labels, case.labels)
    prepared = prepare(atlas, (2.5, 2.5, 2.5))
    assert prepared.image.shape == tuple(round(n * 3.0 / 2.5) for n in case.image.shape)
    assert prepared.image.min() >= -1000 and prepared.image.max() <= 1000
    assert (prepared.labels == 1).sum() == pytest.approx(644 * (3.0 / 2.5) ** 3, rel=0.15)


def test_real_ct_as_multi_organ_pretraining_data(real_ct_dir: Path) -> None:
    table = load_label_table("totalsegmentator_abdomen")
    case = read_case(
        real_ct_dir / "example_ct_sm.nii.gz", real_ct_dir / "example_ct_sm_seg_total.nii.gz", table=table
    )
    raw = np.asarray(
        nib.as_closest_canonical(nib.load(real_ct_dir / "example_ct_sm_seg_total.nii.gz")).dataobj
    )
    assert table.target[6] == "pancreas" and np.array_equal(case.labels == 6, raw == 7)
    assert np.array_equal(case.labels == 2, np.isin(raw, (2, 3)))  # both kidneys -> "kidney"
    assert np.array_equal(case.labels > 0, np.isin(raw, (1, 2, 3, 4, 5, 6, 7, 18, 19, 20, 52, 63, 64)))
    # the liver of this non-contrast scan is brighter than the spleen, as on any real CT
    assert np.median(case.image[case.labels == 4]) > np.median(case.image[case.labels == 1])


def test_abdomenatlas_organ_folder_for_pretraining(tmp_path: Path) -> None:
    ph = generate_phantom(6, shape=(40, 36, 12), spacing=(3.0, 3.0, 5.0), orientation="RAS")
    folder = tmp_path / "BDMAP_0001"
    (folder / "segmentations").mkdir(parents=True)
    nib.save(nib.Nifti1Image(ph.ct, ph.affine), folder / "ct.nii.gz")
    organ = (ph.labels > 0).astype(np.uint8)
    other = np.zeros_like(organ)
    other[:5] = 1
    nib.save(nib.Nifti1Image(organ, ph.affine), folder / "segmentations" / "pancreas.nii.gz")
    nib.save(nib.Nifti1Image(other, ph.affine), folder / "segmentations" / "liver.nii.gz")
    nib.save(
        nib.Nifti1Image(other, ph.affine), folder / "segmentations" / "femur_left.nii.gz"
    )  # not in the table
    case = read_atlas_case(folder, table="abdomenatlas_organs")
    assert np.array_equal(case.labels == 6, organ > 0) and np.array_equal(case.labels == 5, other > 0)
    assert set(np.unique(case.labels)) == {0, 5, 6}
