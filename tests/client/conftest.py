"""Client test data made by code from seeds: phantoms in any orientation, NIfTI/MHA/DICOM writers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def make_phantom(
    orientation: str = "RAS", seed: int = 7, shape=(48, 40, 24), spacing=(2.0, 2.0, 3.0), n_lesions: int = 1
):
    """A deterministic synthetic abdominal CT (the phantoms stream's generator) stored in `orientation`.

    shape and spacing are given in RAS order, so every orientation stores the very same grid.
    """
    from eanno_training.phantoms import generate_phantom

    ras_axis = ["RLAPSI".index(c) // 2 for c in orientation]
    return generate_phantom(
        seed,
        shape=[shape[r] for r in ras_axis],
        spacing=[spacing[r] for r in ras_axis],
        orientation=orientation,
        n_lesions=n_lesions,
    )


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    """A NIfTI with qform = sform = affine."""
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))
    return path


def save_itk(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    """An MHA/NRRD written by SimpleITK with the LPS direction, spacing and origin of the RAS affine."""
    import SimpleITK as sitk

    lps = LPS @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)))
    image.SetSpacing(spacing.tolist())
    image.SetDirection((lps[:3, :3] / spacing).ravel().tolist())
    image.SetOrigin(lps[:3, 3].tolist())
    sitk.WriteImage(image, str(path))
    return path


def write_dicom_series(
    folder: Path,
    hu: np.ndarray,
    affine: np.ndarray,
    *,
    slope: float = 1.0,
    intercept: float = -1024.0,
    series_uid: str | None = None,
    modality: str = "CT",
    transfer_syntax: str | None = None,
    seed: int = 0,
    description: str = "phantom",
) -> str:
    """Write hu (i, j, k) on the RAS affine as one DICOM file per k slice with full geometry tags.

    Stored values are (hu - intercept) / slope as uint16 (so slope/intercept are exercised); files get
    shuffled names so the reader must sort by position, not by name. Returns the SeriesInstanceUID.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    lps = LPS @ affine
    dx, dy = np.linalg.norm(lps[:3, 0]), np.linalg.norm(lps[:3, 1])
    row_dir, col_dir = lps[:3, 0] / dx, lps[:3, 1] / dy
    stored = (hu.astype(np.float64) - intercept) / slope
    assert np.allclose(stored, np.rint(stored)) and stored.min() >= 0 and stored.max() < 65536
    stored = np.rint(stored).astype(np.uint16)
    series_uid = series_uid or generate_uid(entropy_srcs=[f"series-{seed}-{description}"])
    study_uid = generate_uid(entropy_srcs=[f"study-{seed}"])
    frame_uid = generate_uid(entropy_srcs=[f"frame-{seed}"])
    order = np.random.default_rng(seed).permutation(hu.shape[2])
    for k in range(hu.shape[2]):
        sop_uid = generate_uid(entropy_srcs=[f"{series_uid}-{k}"])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop_uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Phantom^Test", f"P{seed}", "", "O"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.ReferringPhysicianName = (
            "20261127",
            "120000",
            "",
            "",
        )
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, k + 1
        ds.Modality, ds.SeriesDescription, ds.Manufacturer = modality, description, "phantom"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [float(v) for v in lps[:3, 3] + k * lps[:3, 2]]
        ds.ImageOrientationPatient = [float(v) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [float(dy), float(dx)]
        ds.SliceThickness = float(np.linalg.norm(lps[:3, 2]))
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, intercept, "HU"
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        if transfer_syntax is not None:
            ds.compress(transfer_syntax)
        ds.save_as(folder / f"IM{order[k]:04d}_{description}.dcm", enforce_file_format=True)
    return str(series_uid)


@pytest.fixture
def phantom_factory() -> Callable[..., object]:
    """make_phantom as a fixture."""
    return make_phantom
