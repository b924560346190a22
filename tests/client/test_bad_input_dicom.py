"""Bad DICOM series folders, each generated here: a specific error naming the folder and the problem."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from eanno_client.cli import main
from eanno_client.readers import read_volume
from eanno_client.volume import InputError

from .conftest import write_dicom_series

AFFINE = np.array([[-0.8, 0, 0, 100.0], [0, -0.8, 0, 80.0], [0, 0, 2.0, -40.0], [0, 0, 0, 1]])


def hu(seed: int = 0, shape=(16, 14, 8)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = np.rint(rng.normal(40, 20, shape)).astype(np.int16)
    data[:2] = -1000
    return data


def files(folder):
    return sorted(
        folder.glob("*.dcm"),
        key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]),
    )


def missing_slice(folder):
    write_dicom_series(folder, hu(), AFFINE)
    files(folder)[4].unlink()


def uneven_spacing(folder):
    write_dicom_series(folder, hu(), AFFINE)
    path = files(folder)[5]
    ds = pydicom.dcmread(path)
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) - 0.7
    ds.save_as(path)


def duplicate_slice(folder):
    write_dicom_series(folder, hu(), AFFINE)
    path = files(folder)[3]
    ds = pydicom.dcmread(path)
    ds.SOPInstanceUID = ds.SOPInstanceUID[:60] + ".9"
    ds.save_as(folder / "dup.dcm")


def mixed_sizes(folder):
    """One SeriesInstanceUID whose slices have two matrix sizes (two acquisitions merged by a PACS)."""
    uid = write_dicom_series(folder, hu(1), AFFINE)
    path = files(folder)[2]
    ds = pydicom.dcmread(path)
    small = np.zeros((10, 12), np.uint16)
    ds.Rows, ds.Columns, ds.PixelData = 10, 12, small.tobytes()
    ds.SeriesInstanceUID = uid
    ds.save_as(path)


def mixed_orientation(folder):
    write_dicom_series(folder, hu(), AFFINE)
    path = files(folder)[6]
    ds = pydicom.dcmread(path)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0.8, -0.6]
    ds.save_as(path)


def non_orthogonal(folder):
    write_dicom_series(folder, hu(), AFFINE)
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.ImageOrientationPatient = [1, 0, 0, 0.3, 0.953939, 0]  # unit vectors 72.5 degrees apart
        ds.save_as(path)


def truncated_header(folder):
    write_dicom_series(folder, hu(), AFFINE)
    path = files(folder)[0]
    path.write_bytes(path.read_bytes()[:400])


def truncated_pixels(folder):
    write_dicom_series(folder, hu(), AFFINE)
    path = files(folder)[3]
    path.write_bytes(path.read_bytes()[:-100])


def no_pixel_data(folder):
    """A slice whose transfer stopped before its pixels: every header tag there, no PixelData element."""
    import pydicom

    write_dicom_series(folder, hu(), AFFINE)
    path = files(folder)[2]
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path, enforce_file_format=True)


BAD = {
    "no_pixel_data": (
        no_pixel_data,
        "holds no pixel data: an incomplete copy, or not an image; copy the series again",
    ),
    "missing_slice": (missing_slice, "a missing slice between positions"),
    "uneven_spacing": (uneven_spacing, "not evenly spaced"),
    "duplicate_slice": (duplicate_slice, "not evenly spaced"),
    "mixed_sizes": (mixed_sizes, "different or non-2D shapes"),
    "mixed_orientation": (mixed_orientation, "different orientations"),
    "non_orthogonal": (non_orthogonal, "non-orthogonal direction cosines"),
    "truncated_header": (truncated_header, "header incomplete"),
    "truncated_pixels": (
        truncated_pixels,
        "pixel data cut short (348 of 448 bytes): the file was not copied completely",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_reader_names_the_folder_and_the_problem(tmp_path, name) -> None:
    build, words = BAD[name]
    build(tmp_path / name)
    with pytest.raises(InputError) as e:
        read_volume(tmp_path / name)
    assert str(tmp_path / name) in str(e.value) and words in str(e.value), str(e.value)


def test_two_series_pick_the_ct_one_and_say_so(tmp_path) -> None:
    """A folder with a CT and a secondary series is not an error: the CT series is read and named."""
    folder = tmp_path / "two"
    ct_uid = write_dicom_series(folder, hu(2), AFFINE, description="ct")
    write_dicom_series(folder, hu(3, (16, 14, 12)), AFFINE, modality="OT", description="other", seed=1)
    volume = read_volume(folder)
    assert volume.series_uid == ct_uid and "of 2 in the folder" in volume.note
    np.testing.assert_array_equal(volume.data, hu(2))


def test_batch_of_bad_series_writes_nothing(tmp_path) -> None:
    cases = tmp_path / "cases"
    for name, (build, _) in BAD.items():
        build(cases / name)
    out = tmp_path / "out"
    r = CliRunner().invoke(
        main,
        [
            "annotate",
            str(cases),
            "--out",
            str(out),
            "--url",
            "127.0.0.1:9",
            "--retries",
            "0",
            "--no-check",
            "--json",
        ],
    )
    assert r.exit_code == 4, r.output
    summary = json.loads(r.stdout)
    assert summary["failed"] == len(BAD)
    for case in summary["cases"]:
        assert BAD[case["case"]][1] in case["error"], case
    assert sorted(p.name for p in out.iterdir()) == ["failures.jsonl"]
