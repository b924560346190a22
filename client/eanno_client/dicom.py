"""DICOM series folders: group files by series, pick one, stack slices into a volume with a RAS affine.

Hand-written geometry (rather than SimpleITK's series reader) because the client keeps the pydicom
datasets for DICOM-SEG and decodes compressed transfer syntaxes through pydicom's pylibjpeg plugins.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from eanno_client.sanity import check_request_size, checked_hu
from eanno_client.volume import InputError, MissingExtra, Volume

log = logging.getLogger(__name__)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# Slices whose spacing differs from the median by more than this fraction mean a gap or a mixed series.
SLICE_GAP_TOLERANCE = 0.1
# Row and column direction cosines must be unit length and perpendicular to within this.
ORTHO_TOLERANCE = 1e-3


def _pydicom() -> Any:
    try:
        import pydicom
    except ImportError as e:
        raise MissingExtra("reading DICOM needs pydicom (pip install 'eanno-client[all]')") from e
    return pydicom


def is_dicom_file(path: Path) -> bool:
    """Whether a file has the DICOM preamble ('DICM' at byte 128)."""
    try:
        with path.open("rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def holds_dicom(folder: Path) -> bool:
    """Whether a folder holds DICOM files directly (not in subfolders)."""
    return any(p.is_file() and is_dicom_file(p) for p in folder.iterdir())


def list_series(folder: Path) -> dict[str, list[Any]]:
    """SeriesInstanceUID -> headers (no pixel data) of the image files directly in `folder`."""
    pydicom = _pydicom()
    series: dict[str, list[Any]] = defaultdict(list)
    for p in sorted(folder.iterdir()):
        if not (p.is_file() and is_dicom_file(p)):
            continue
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
            uid = str(ds.SeriesInstanceUID) if "SeriesInstanceUID" in ds else None
            has_geometry = "ImagePositionPatient" in ds and uid is not None
            sop_class = getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)
            is_image = "Image Storage" in str(getattr(sop_class, "name", ""))
        except Exception as e:  # pydicom raises several types for damaged files, some on first access
            raise InputError(f"{p}: not a readable DICOM file ({e})") from e
        if not has_geometry and is_image:
            # an image instance without its geometry: a truncated copy, not a file to skip silently
            raise InputError(
                f"{p}: DICOM image header incomplete (no ImagePositionPatient or "
                "SeriesInstanceUID); truncated or corrupt file?"
            )
        if has_geometry:
            ds.filename = str(p)
            series[str(uid)].append(ds)
    return dict(series)


def choose_series(folder: Path, series: dict[str, list[Any]], uid: str | None) -> tuple[str, str]:
    """The series to read (the given UID, else the CT series with most slices) and a note saying which."""
    if not series:
        raise InputError(f"{folder}: no DICOM image slices with geometry (ImagePositionPatient) found")
    if uid is not None:
        if uid not in series:
            raise InputError(f"{folder}: series {uid} not found; series present: {', '.join(sorted(series))}")
        return uid, f"series {uid} (chosen by --series-uid)"

    def rank(item: tuple[str, list[Any]]) -> tuple[bool, int, str]:
        modality = str(getattr(item[1][0], "Modality", ""))
        return modality == "CT", len(item[1]), item[0]

    best, slices = max(series.items(), key=rank)
    desc = str(getattr(slices[0], "SeriesDescription", "")) or "no description"
    note = f"series {best} ({getattr(slices[0], 'Modality', '?')}, {len(slices)} slices, {desc})"
    if len(series) > 1:
        note += f", the CT series with most slices of {len(series)} in the folder"
    return best, note


def slice_geometry(headers: list[Any], folder: Path) -> tuple[list[Any], np.ndarray]:
    """Headers sorted along the slice normal and the LPS affine of the stacked (col, row, slice) grid."""
    iop = np.asarray(headers[0].ImageOrientationPatient, dtype=np.float64)
    row_dir, col_dir = iop[:3], iop[3:]
    if iop.shape != (6,) or not np.all(np.isfinite(iop)):
        raise InputError(f"{folder}: ImageOrientationPatient {iop.tolist()} is not six finite numbers")
    norms, dot = np.linalg.norm([row_dir, col_dir], axis=1), float(row_dir @ col_dir)
    if np.any(np.abs(norms - 1) > ORTHO_TOLERANCE) or abs(dot) > ORTHO_TOLERANCE:
        raise InputError(
            f"{folder}: non-orthogonal direction cosines in ImageOrientationPatient "
            f"{np.round(iop, 4).tolist()} (row . column = {dot:.4f}, norms "
            f"{np.round(norms, 4).tolist()}); sheared or corrupt geometry"
        )
    normal = np.cross(row_dir, col_dir)
    for h in headers:
        if not np.allclose(np.asarray(h.ImageOrientationPatient, dtype=np.float64), iop, atol=1e-4):
            raise InputError(
                f"{folder}: slices of one series have different orientations (ImageOrientationPatient)"
            )
    positions = np.asarray([h.ImagePositionPatient for h in headers], dtype=np.float64)
    order = np.argsort(positions @ normal, kind="stable")
    headers = [headers[i] for i in order]
    positions = positions[order]
    dy, dx = (float(v) for v in headers[0].PixelSpacing)  # row spacing, column spacing
    affine = np.eye(4)
    affine[:3, 0] = row_dir * dx  # i runs along a row (columns)
    affine[:3, 1] = col_dir * dy  # j runs down the rows
    affine[:3, 3] = positions[0]
    if len(headers) > 1:
        steps = np.diff(positions @ normal)
        median = float(np.median(steps))
        if median > 0 and np.any(gaps := np.abs(steps / median - 2) < SLICE_GAP_TOLERANCE):
            k = int(np.argmax(gaps))
            raise InputError(
                f"{folder}: slices not evenly spaced, a missing slice between positions {positions[k] @ normal:.3f} and "
                f"{positions[k + 1] @ normal:.3f} mm along the slice normal (step "
                f"{steps[k]:.3f} mm, others {median:.3f} mm)"
            )
        if median <= 0 or np.any(np.abs(steps - median) > SLICE_GAP_TOLERANCE * median):
            raise InputError(
                f"{folder}: slice positions are not evenly spaced (steps {np.round(steps, 3).tolist()} "
                "mm); missing or duplicate slices?"
            )
        affine[:3, 2] = (positions[-1] - positions[0]) / (len(headers) - 1)
    else:
        affine[:3, 2] = normal * float(getattr(headers[0], "SliceThickness", 1.0) or 1.0)
    return headers, affine


def pixel_problem(ds: Any) -> str:
    """Why a slice's pixels cannot be decoded, in the user's words, with what to do (not the decoder's text)."""
    try:
        return _pixel_problem(ds)
    except Exception:  # pydicom parses lazily: a damaged tag can raise on any access; never hide the refusal
        return "pixel data and image tags are damaged and cannot be decoded: copy the series again"


def _pixel_problem(ds: Any) -> str:
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    name = getattr(syntax, "name", "no transfer syntax")
    if "PixelData" not in ds:
        return "holds no pixel data: an incomplete copy, or not an image; copy the series again from the PACS"
    if syntax is None:
        return (
            "cannot decode pixel data: no transfer syntax in the file meta (TransferSyntaxUID), so how the "
            "pixels are stored is unknown; the file was written incompletely: copy the series again"
        )
    if syntax is not None and getattr(syntax, "is_compressed", False):
        try:
            from pydicom.pixels import get_decoder

            available = get_decoder(syntax).is_available
        except Exception:  # no decoder known for this syntax at all
            available = False
        if not available:
            return (
                f"compressed pixel data ({name}) and no decoder for it installed: "
                "pip install 'eanno-client[all]' (the pylibjpeg plugins)"
            )
        return f"compressed pixel data ({name}) is damaged and cannot be decoded: copy the series again"
    try:
        expected = (
            int(ds.Rows)
            * int(ds.Columns)
            * int(getattr(ds, "SamplesPerPixel", 1) or 1)
            * (int(ds.BitsAllocated) // 8)
            * int(getattr(ds, "NumberOfFrames", 1) or 1)
        )
        got = len(ds.PixelData)
    except Exception:  # a damaged image tag: say so rather than guess
        return f"the image tags (Rows, Columns, BitsAllocated) are damaged ({name}); copy the series again"
    if got < expected:
        return (
            f"pixel data cut short ({got} of {expected} bytes): the file was not copied completely; "
            "copy the series again"
        )
    return f"pixel data ({name}) does not match its image tags (Rows, Columns, BitsAllocated); damaged file"


def read_dicom_series(folder: Path, series_uid: str | None = None) -> Volume:
    """One series of a DICOM folder as a HU volume (rescale slope/intercept applied) with its RAS affine."""
    pydicom = _pydicom()
    from pydicom.pixels import pixel_array as decode

    series = list_series(folder)
    try:
        uid, note = choose_series(folder, series, series_uid)
    except InputError:
        raise
    except Exception as e:  # pydicom's lazy parse of a damaged Modality/SeriesDescription
        raise InputError(f"{folder}: malformed series tags ({type(e).__name__}: {e})") from e
    try:
        headers, lps = slice_geometry(series[uid], folder)
        shape = (int(headers[0].Columns), int(headers[0].Rows), len(headers))
    except InputError:
        raise
    except Exception as e:  # pydicom parses lazily: a damaged tag raises many types on first access
        # a damaged header: a geometry tag missing or unparsable (found by fuzzing the reader)
        raise InputError(
            f"{folder}: series {uid} has missing or malformed geometry tags ({type(e).__name__}: {e})"
        ) from e
    check_request_size(shape, folder)
    datasets, planes = [], []
    for h in headers:
        try:
            ds = pydicom.dcmread(h.filename)
        except Exception as e:  # pydicom raises several types for damaged files
            raise InputError(f"{h.filename}: not a readable DICOM file ({e})") from e
        try:
            pixels = decode(ds)  # unlike ds.pixel_array, keeps no cached copy on the dataset
        except Exception as e:  # missing decoder plugins, damaged pixel data
            raise InputError(f"{h.filename}: {pixel_problem(ds)}") from e
        try:
            slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
            intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
        except Exception as e:  # a damaged tag: ValueError, or pydicom's lazy parse errors
            raise InputError(f"{h.filename}: malformed RescaleSlope/RescaleIntercept ({e})") from e
        if not (np.isfinite(slope) and np.isfinite(intercept)):
            raise InputError(f"{h.filename}: non-finite RescaleSlope {slope} or RescaleIntercept {intercept}")
        planes.append(pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept))
        # Keep the headers only (DICOM-SEG needs no source pixels): one copy of the volume in memory.
        del ds.PixelData
        datasets.append(ds)
    shapes = {p.shape for p in planes}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise InputError(f"{folder}: series {uid} has slices of different or non-2D shapes {sorted(shapes)}")
    # pixel_array is (rows, cols) = (j, i); the volume is (i, j, k).
    data = np.stack(planes, axis=-1).transpose(1, 0, 2)
    log.info("%s: read %s", folder, note)
    return Volume(
        checked_hu(data, folder),
        LPS_TO_RAS @ lps,
        folder,
        "dicom",
        note=note,
        series_uid=uid,
        datasets=datasets,
    )
