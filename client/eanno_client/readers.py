"""Read one case (NIfTI, MHA/NRRD, DICOM series folder) into a Volume on its own grid."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np

from eanno_client.fastio import load_nifti
from eanno_client.sanity import check_request_size, check_shape, checked_hu
from eanno_client.volume import InputError, MissingExtra, Volume

log = logging.getLogger(__name__)
NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
# ITK (MHA/NRRD) stores directions in LPS; nibabel affines are RAS.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def volume_kind(path: Path) -> str | None:
    """'nifti', 'itk', 'dicom' or None for a path the client does not read."""
    name = path.name.lower()
    if path.is_dir():
        from eanno_client.dicom import holds_dicom

        return "dicom" if holds_dicom(path) else None
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(ITK_SUFFIXES):
        return "itk"
    return None


def read_nifti(path: Path) -> Volume:
    """A NIfTI file's first 3D volume in HU (scl_slope/inter applied) with its affine."""
    header_read = False

    def check(img: nib.Nifti1Image) -> None:
        nonlocal header_read
        header_read = True
        # Shape and size from the header alone: refuse before reading (or allocating) any voxel.
        check_request_size(check_shape(img.shape, path), path)

    try:
        img, data = load_nifti(path, check)
    except InputError:
        raise
    except (
        Exception
    ) as e:  # nibabel raises many types for damaged files; zlib errors, EOFError for truncated data
        log.debug("%s: %s: %s", path, type(e).__name__, e)
        raise InputError(f"{path}: {nifti_problem(e, header_read)}") from e
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError(f"{path}: the header's affine is not a finite invertible voxel-to-world mapping")
    return Volume(checked_hu(data, path), affine, path, "nifti")


def nifti_problem(error: Exception, header_read: bool) -> str:
    """What is wrong with a NIfTI file nibabel could not read, in the user's words (not the library's)."""
    import gzip
    import zlib

    if isinstance(error, (EOFError, zlib.error)) or "end-of-stream" in str(error):
        where = "voxel data" if header_read else "file"
        return (
            f"NIfTI {where} truncated or corrupt: the file ends early or its gzip data is damaged "
            "(an incomplete copy or transfer?); copy it again"
        )
    if isinstance(error, gzip.BadGzipFile):
        return (
            "not a readable NIfTI file: named .nii.gz but not gzip-compressed data; check what this file is"
        )
    if header_read:
        return (
            f"NIfTI voxel data unreadable, truncated or corrupt ({type(error).__name__}); copy the file again"
        )
    return (
        "not a readable NIfTI file: no valid NIfTI header (magic 'n+1'/'ni1' and sizes); is it another "
        "format, or damaged?"
    )


def read_itk(path: Path) -> Volume:
    """An MHA/MHD/NRRD file read with SimpleITK, its LPS geometry turned into a RAS affine."""
    try:
        import SimpleITK as sitk
    except ImportError as e:
        raise MissingExtra(
            f"{path}: reading MHA/NRRD needs SimpleITK (pip install 'eanno-client[all]')"
        ) from e
    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()  # the header only: refuse an oversized image before reading voxels
        if reader.GetDimension() == 3:
            check_request_size(reader.GetSize(), path)
        image = reader.Execute()
    except RuntimeError as e:
        raise InputError(f"{path}: not a readable MHA/NRRD image ({str(e).strip().splitlines()[-1]})") from e
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"{path}: a colour or vector image ({image.GetNumberOfComponentsPerPixel()} values per "
            "voxel); expected a greyscale CT volume in HU"
        )
    if image.GetDimension() != 3:
        raise InputError(f"{path}: a {image.GetDimension()}D image; expected one 3D CT volume")
    # SimpleITK arrays are (z, y, x); the volume's voxel order is (i, j, k) = (x, y, z).
    data = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction @ np.diag(image.GetSpacing())
    lps[:3, 3] = image.GetOrigin()
    return Volume(checked_hu(data, path), LPS_TO_RAS @ lps, path, "itk")


def read_volume(path: str | Path, series_uid: str | None = None) -> Volume:
    """Read a case from any supported input; InputError naming the file when it cannot."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    kind = volume_kind(p)
    if kind == "nifti":
        return read_nifti(p)
    if kind == "itk":
        return read_itk(p)
    if kind == "dicom":
        from eanno_client.dicom import read_dicom_series

        return read_dicom_series(p, series_uid)
    raise InputError(
        f"{p}: not a NIfTI (.nii/.nii.gz), MHA/NRRD (.mha/.mhd/.nrrd/.nhdr) file or a folder of DICOM files"
    )
