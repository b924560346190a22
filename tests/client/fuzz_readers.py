"""Fuzz the client's input readers with hypothesis: any bytes, any header, and the reader either returns a
valid int16 3D volume with a finite invertible affine or raises InputError -- never anything else.

Targets: NIfTI bytes, NIfTI headers (dims, dtype, scaling, affine), DICOM bytes, MHA bytes.
`make fuzz` runs this for a bounded time (FUZZ_SECONDS, default 120); test_fuzz_smoke.py runs a few
examples of each target in the tests.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
from eanno_client.readers import read_volume
from eanno_client.volume import InputError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

AFFINE = np.diag([1.5, 1.5, 2.5, 1.0])


def valid_nifti_bytes(seed: int = 0, shape=(6, 5, 4)) -> bytes:
    """A small valid NIfTI-1 image (uncompressed) as bytes."""
    data = np.random.default_rng(seed).integers(-1000, 1000, shape).astype(np.int16)
    img = nib.Nifti1Image(data, AFFINE)
    return img.to_bytes()


def valid_dicom_bytes(seed: int = 0) -> bytes:
    """One valid CT slice (the test writer's tags) as bytes."""
    from tests_client_conftest import write_dicom_series  # resolved by _import_conftest

    with tempfile.TemporaryDirectory() as d:
        data = np.random.default_rng(seed).integers(-1000, 1000, (6, 5, 1)).astype(np.int16)
        write_dicom_series(Path(d), data, AFFINE)
        return next(Path(d).glob("*.dcm")).read_bytes()


def _import_conftest() -> None:
    """Make tests/client/conftest.py importable as tests_client_conftest (it is not a package)."""
    import importlib.util

    if "tests_client_conftest" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(
        "tests_client_conftest", Path(__file__).with_name("conftest.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["tests_client_conftest"] = module
    spec.loader.exec_module(module)


def check_read(path: Path) -> str:
    """Read path; 'ok' or 'refused'; any exception other than InputError propagates (a bug)."""
    try:
        volume = read_volume(path)
    except InputError as e:
        assert str(e), "an InputError without a message"
        return "refused"
    assert volume.data.dtype == np.int16 and volume.data.ndim == 3 and min(volume.data.shape) >= 1
    assert np.all(np.isfinite(volume.affine)) and abs(np.linalg.det(volume.affine[:3, :3])) > 0
    return "ok"


def mutate(raw: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(raw)
    for pos, value in edits:
        out[pos % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


EDITS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=12)
CUTS = st.one_of(st.none(), st.integers(0, 2000))


def target_nifti_bytes(n: int) -> Callable[[], None]:
    raw = valid_nifti_bytes()

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(edits=EDITS, cut=CUTS, gz=st.booleans())
    def run(edits, cut, gz):
        blob = mutate(raw, [(p % 352, v) for p, v in edits], cut)  # header bytes mostly
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / ("case.nii.gz" if gz else "case.nii")
            path.write_bytes(gzip.compress(blob) if gz else blob)
            check_read(path)

    return run


def target_nifti_header(n: int) -> Callable[[], None]:
    dims = st.lists(st.integers(-2, 70), min_size=1, max_size=5)
    floats = st.floats(allow_nan=True, allow_infinity=True, width=32)

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(
        dims=dims,
        dtype=st.sampled_from(["int16", "uint8", "uint16", "int32", "float32", "float64"]),
        slope=floats,
        inter=floats,
        affine=st.lists(floats, min_size=12, max_size=12),
    )
    def run(dims, dtype, slope, inter, affine):
        header = nib.Nifti1Header()
        try:
            header.set_data_dtype(np.dtype(dtype))
            header.set_data_shape([max(d, 0) for d in dims])
            a = np.eye(4)
            a[:3] = np.reshape(affine, (3, 4))
            header.set_sform(a, code=1)
        except Exception:  # nibabel refuses to write such a header at all: nothing to read
            return
        header["scl_slope"], header["scl_inter"] = slope, inter
        n_vox = int(np.prod([max(d, 0) for d in dims]))
        payload = np.zeros(min(n_vox, 4096), np.dtype(dtype)).tobytes()
        buf = io.BytesIO()
        buf.write(header.binaryblock + b"\0" * 4 + payload)
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "case.nii"
            path.write_bytes(buf.getvalue())
            check_read(path)

    return run


def target_dicom_bytes(n: int) -> Callable[[], None]:
    _import_conftest()
    raw = valid_dicom_bytes()

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(edits=EDITS, cut=CUTS)
    def run(edits, cut):
        blob = mutate(raw, [(132 + p % max(1, len(raw) - 132), v) for p, v in edits], cut)
        if len(blob) < 132:
            blob = raw[:132] + blob  # keep the preamble so the folder is taken as DICOM
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "series").mkdir()
            path = Path(d) / "series" / "slice.dcm"
            path.write_bytes(blob)
            check_read(path.parent)

    return run


def valid_mha_bytes(seed: int = 0) -> bytes:
    """A small valid MHA image (text header + raw voxels) as bytes."""
    import SimpleITK as sitk

    data = np.random.default_rng(seed).integers(-1000, 1000, (4, 5, 6)).astype(np.int16)
    with tempfile.TemporaryDirectory() as d:
        sitk.WriteImage(sitk.GetImageFromArray(data), str(Path(d) / "x.mha"))
        return (Path(d) / "x.mha").read_bytes()


def target_mha_bytes(n: int) -> Callable[[], None]:
    raw = valid_mha_bytes()
    header_end = raw.index(b"ElementDataFile")

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(edits=EDITS, cut=CUTS)
    def run(edits, cut):
        blob = mutate(raw, [(p % header_end, v) for p, v in edits], cut)  # the text header mostly
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "case.mha"
            path.write_bytes(blob)
            check_read(path)

    return run


TARGETS = {
    "nifti_bytes": target_nifti_bytes,
    "nifti_header": target_nifti_header,
    "dicom_bytes": target_dicom_bytes,
    "mha_bytes": target_mha_bytes,
}


def fuzz(seconds: float, chunk: int = 50) -> dict[str, int]:
    """Run every target in rounds of `chunk` examples until `seconds` pass; examples run per target."""
    counts = dict.fromkeys(TARGETS, 0)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, make in TARGETS.items():
            make(chunk)()
            counts[name] += chunk
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="time budget (default 120)")
    args = ap.parse_args()
    import logging

    logging.disable(logging.WARNING)
    start = time.monotonic()
    counts = fuzz(args.seconds)
    print(json.dumps({"fuzz_seconds": round(time.monotonic() - start, 1), "examples": counts, "failures": 0}))


if __name__ == "__main__":
    main()
