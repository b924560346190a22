"""Bad NIfTI/MHA inputs, each generated here: a specific error naming the file and the problem, the batch
goes on past it, and nothing (not even a partial file) is written for it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from eanno_client.cli import main
from eanno_client.readers import read_volume
from eanno_client.sanity import GRPC_LIMIT_BYTES, check_request_size, not_ct_reason, request_bytes
from eanno_client.volume import InputError

from .conftest import save_itk, save_nifti

AFFINE = np.diag([1.5, 1.5, 2.5, 1.0])


def ct_like(seed: int = 0, shape=(20, 18, 12)) -> np.ndarray:
    """A small deterministic CT-like volume in HU: air, fat and soft tissue."""
    rng = np.random.default_rng(seed)
    hu = rng.normal(40, 20, shape)
    hu[:3] = -1000
    hu[-3:] = -100
    return np.rint(hu).astype(np.int16)


def truncated(folder: Path) -> Path:
    path = save_nifti(folder / "truncated.nii.gz", ct_like(), AFFINE)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def wrong_magic(folder: Path) -> Path:
    path = save_nifti(folder / "wrong_magic.nii", ct_like(), AFFINE)
    raw = bytearray(path.read_bytes())
    raw[344:348] = b"XYZ\0"  # NIfTI-1 magic is 'n+1\0' at byte 344
    path.write_bytes(bytes(raw))
    return path


def not_gzip(folder: Path) -> Path:
    path = folder / "not_gzip.nii.gz"
    path.write_bytes(b"this is not a NIfTI file at all\n" * 20)
    return path


def flat_2d(folder: Path) -> Path:
    return save_nifti(folder / "flat_2d.nii.gz", ct_like()[:, :, 0], AFFINE)


def four_d(folder: Path) -> Path:
    return save_nifti(folder / "four_d.nii.gz", np.stack([ct_like(1), ct_like(2)], axis=-1), AFFINE)


def zero_axis(folder: Path) -> Path:
    return save_nifti(folder / "zero_axis.nii.gz", np.zeros((20, 0, 12), np.int16), AFFINE)


def with_nan(folder: Path) -> Path:
    data = ct_like().astype(np.float32)
    data[5, 5, 5] = np.nan
    data[6, 6, 6] = np.inf
    return save_nifti(folder / "nan_inf.nii.gz", data, AFFINE)


def mri_like(folder: Path) -> Path:
    rng = np.random.default_rng(3)
    return save_nifti(
        folder / "mri_like.nii.gz", rng.integers(0, 4000, (20, 18, 12)).astype(np.int16), AFFINE
    )


def pet_like(folder: Path) -> Path:
    rng = np.random.default_rng(4)
    return save_nifti(
        folder / "pet_like.nii.gz", rng.gamma(1.0, 2.0, (20, 18, 12)).astype(np.float32), AFFINE
    )


def singular_affine(folder: Path) -> Path:
    img = nib.Nifti1Image(ct_like(), None)
    img.header.set_qform(None, code=0)
    img.header.set_sform(np.diag([1.5, 0.0, 2.5, 1.0]), code=1)  # one axis of zero length in mm
    nib.save(img, str(folder / "singular_affine.nii"))
    return folder / "singular_affine.nii"


def oversized_header(folder: Path) -> Path:
    """A NIfTI whose header claims 2048 x 2048 x 300 int16 voxels (2.3 GiB) with no data behind it."""
    header = nib.Nifti1Header()
    header.set_data_shape((2048, 2048, 300))
    header.set_data_dtype(np.int16)
    header.set_qform(AFFINE, code=1)
    header.set_sform(AFFINE, code=1)
    path = folder / "oversized.nii.gz"
    with gzip.open(path, "wb") as f:
        f.write(header.binaryblock + b"\0" * 4)  # vox_offset 352: header + extension flag, then (no) data
    return path


def colour_rgb(folder: Path) -> Path:
    """A NIfTI of RGB24 voxels (a rendering saved as an image)."""
    rgb = np.zeros((20, 18, 12), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["R"] = 200
    return save_nifti(folder / "colour_rgb.nii.gz", rgb, AFFINE)


def vector_4d(folder: Path) -> Path:
    """Three values per voxel stored as a 4th axis of length 3 (a displacement field, or RGB as floats)."""
    return save_nifti(folder / "vector_4d.nii.gz", np.stack([ct_like(i) for i in range(3)], axis=-1), AFFINE)


def complex_voxels(folder: Path) -> Path:
    return save_nifti(folder / "complex.nii.gz", ct_like().astype(np.complex64), AFFINE)


def extreme_values(folder: Path) -> Path:
    """A float volume whose values are far beyond HU (a wrong slope): int16 cannot hold them."""
    data = ct_like().astype(np.float32) * 1e6
    return save_nifti(folder / "extreme.nii.gz", data, AFFINE)


def uint16_raw(folder: Path) -> Path:
    """Stored uint16 values without the scaling that makes them HU (odd data type, values up to 65000)."""
    data = np.full((20, 18, 12), 65000, np.uint16)
    data[:3] = 0
    img = nib.Nifti1Image(data, AFFINE)
    img.header.set_slope_inter(1.0, 0.0)
    nib.save(img, str(folder / "uint16_raw.nii.gz"))
    return folder / "uint16_raw.nii.gz"


def gzip_partial(folder: Path) -> Path:
    """A transfer that stopped part-way: the gzip stream ends early."""
    path = save_nifti(folder / "partial.nii.gz", ct_like(), AFFINE)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * 0.8)])
    return path


# builder, words the error must contain
BAD = {
    "colour_rgb": (colour_rgb, "a colour or vector image (each voxel holds R, G, B)"),
    "vector_4d": (vector_4d, "a colour or vector image of shape [20, 18, 12, 3] (3 values per voxel)"),
    "complex": (complex_voxels, "complex-valued voxels"),
    "extreme": (extreme_values, "do not fit CT's HU range"),
    "uint16_raw": (uint16_raw, "do not fit CT's HU range"),
    "partial": (gzip_partial, "truncated or corrupt"),
    "truncated": (truncated, "truncated"),
    "wrong_magic": (wrong_magic, "not a readable NIfTI"),
    "not_gzip": (not_gzip, "not a readable NIfTI"),
    "flat_2d": (flat_2d, "2D image"),
    "four_d": (four_d, "4D image"),
    "zero_axis": (zero_axis, "zero-length axis"),
    "nan_inf": (with_nan, "1 NaN and 1 infinite"),
    "singular_affine": (singular_affine, "affine"),
    "oversized": (oversized_header, "gRPC message limit"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_reader_names_the_file_and_the_problem(tmp_path, name) -> None:
    build, words = BAD[name]
    path = build(tmp_path)
    with pytest.raises(InputError) as e:
        read_volume(path)
    assert str(path) in str(e.value) and words in str(e.value), str(e.value)


def test_oversized_header_is_refused_without_reading_voxels(tmp_path) -> None:
    """The header alone decides: the file is a few hundred bytes, the claim 2.3 GiB."""
    path = oversized_header(tmp_path)
    assert path.stat().st_size < 4096
    with pytest.raises(InputError, match=r"2\.34 GiB as int16, over the 2\.00 GiB"):
        read_volume(path)


def test_oversized_mhd_header_is_refused_without_reading_voxels(tmp_path) -> None:
    pytest.importorskip("SimpleITK")
    path = tmp_path / "oversized.mhd"
    path.write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 2048 2048 300\nElementType = MET_SHORT\n"
        "ElementSpacing = 0.7 0.7 1.0\nElementDataFile = oversized.raw\n"
    )  # no .raw file at all
    with pytest.raises(InputError, match=r"over the 2\.00 GiB gRPC message limit"):
        read_volume(path)


def test_request_size_limit_is_exact() -> None:
    edge = (GRPC_LIMIT_BYTES - request_bytes((0, 0, 0))) // 2  # the largest voxel count that fits
    check_request_size((edge, 1, 1), "x")
    with pytest.raises(InputError, match="gRPC message limit"):
        check_request_size((edge + 1, 1, 1), "x")


@pytest.mark.parametrize(
    "dtype,slope,inter",
    [(np.float64, 1.0, 0.0), (np.uint16, 1.0, -1024.0), (np.int32, 0.5, -1000.0), (np.uint16, 2.0, -2048.0)],
)
def test_stored_types_with_scaling_give_hu(tmp_path, dtype, slope, inter) -> None:
    hu = ct_like(5)
    stored = (hu.astype(np.float64) - inter) / slope
    img = nib.Nifti1Image(stored.astype(dtype), AFFINE)
    img.header.set_slope_inter(slope, inter)
    path = tmp_path / f"{np.dtype(dtype).name}.nii.gz"
    nib.save(img, str(path))
    assert np.asanyarray(nib.load(str(path)).dataobj.get_unscaled()).dtype == dtype
    volume = read_volume(path)
    assert volume.data.dtype == np.int16
    np.testing.assert_array_equal(volume.data, np.rint(stored.astype(dtype) * slope + inter).astype(np.int16))


def test_mha_nan_is_refused(tmp_path) -> None:
    pytest.importorskip("SimpleITK")
    data = ct_like().astype(np.float32)
    data[0, 0, 0] = np.nan
    path = save_itk(tmp_path / "nan.mha", data, AFFINE)
    with pytest.raises(InputError, match="1 NaN and 0 infinite"):
        read_volume(path)


def test_vector_mha_is_refused_in_plain_words(tmp_path) -> None:
    sitk = pytest.importorskip("SimpleITK")
    image = sitk.Image([10, 9, 8], sitk.sitkVectorFloat32, 3)
    path = tmp_path / "vector.mha"
    sitk.WriteImage(image, str(path))
    with pytest.raises(InputError, match=r"a colour or vector image \(3 values per voxel\)"):
        read_volume(path)


@pytest.mark.parametrize(
    "shape,words", [((40, 36, 1), "a single slice along k"), ((40, 2, 30), "only 2 voxels along j")]
)
def test_too_thin_for_the_model_is_refused(tmp_path, shape, words) -> None:
    path = save_nifti(tmp_path / "thin.nii.gz", ct_like(shape=shape), AFFINE)
    r = run([path, "--out", tmp_path / "out"])
    assert r.exit_code == 4
    error = json.loads(r.stdout)["cases"][0]["error"]
    assert words in error and "give the whole series" in error, error


def test_small_field_of_view_is_flagged_not_silent(tmp_path) -> None:
    """30 x 30 x 20 mm cannot hold a pancreas: the case goes on (the network fails here), with the flag
    in the per-case note and log, so an empty result is never read as a normal 'no lesions'."""
    from eanno_client.sanity import check_extent

    assert check_extent((20, 18, 12), (1.5, 1.5, 2.5), "x").startswith(
        "flag: the volume covers only 30 mm along i"
    )
    assert check_extent((200, 180, 120), (1.5, 1.5, 2.5), "x") is None


def test_intensity_heuristic() -> None:
    assert not_ct_reason(ct_like()) is None
    assert "MRI" in not_ct_reason(np.array([0, 3999], np.int16))
    assert "PET" in not_ct_reason(np.array([0, 12], np.int16))
    assert not_ct_reason(np.array([30, 100], np.int16)) is None  # soft tissue only (a crop): still CT


def run(args: list[str]):
    # no server at this port: every case here must fail while reading, before any request is made
    return CliRunner().invoke(
        main,
        [
            "annotate",
            *map(str, args),
            "--url",
            "127.0.0.1:9",
            "--retries",
            "0",
            "--no-check",
            "--json",
            "--no-preview",
        ],
    )


def test_batch_goes_on_and_writes_nothing_for_bad_cases(tmp_path) -> None:
    cases = tmp_path / "cases"
    cases.mkdir()
    paths = {name: build(cases) for name, (build, _) in BAD.items()}
    paths["mri_like"], paths["pet_like"] = mri_like(cases), pet_like(cases)
    out = tmp_path / "out"
    r = run([cases, "--out", out])
    assert r.exit_code == 4, r.output
    summary = json.loads(r.stdout)
    assert summary["failed"] == len(paths) and summary["done"] == 0
    errors = {c["case"]: c["error"] for c in summary["cases"]}
    for name, (_, words) in {**BAD, "mri_like": (None, "MRI"), "pet_like": (None, "PET")}.items():
        case = next(c for c in errors if c.startswith(name))
        assert words in errors[case] and str(paths[name]) in errors[case], errors[case]
    assert sorted(p.name for p in out.iterdir()) == ["failures.jsonl"], "partial outputs were written"
    logged = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert len(logged) == len(paths)


def test_not_ct_is_refused_unless_forced(tmp_path) -> None:
    path = mri_like(tmp_path)
    r = run([path, "--out", tmp_path / "out"])
    assert r.exit_code == 4
    assert "refusing to annotate (use --force" in json.loads(r.stdout)["cases"][0]["error"]
    r = run([path, "--out", tmp_path / "out", "--force"])
    error = json.loads(r.stdout)["cases"][0]["error"]
    assert (
        "MRI" not in error and "failed" in error and "127.0.0.1:9" in error
    )  # past the check, to the network
