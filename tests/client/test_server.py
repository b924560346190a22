"""eanno-client against a real Triton server (the nvidia-pytriton wheel) serving a known HU-band segmenter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from eanno_client.cli import main
from scipy import ndimage

from .conftest import save_nifti, write_dicom_series
from .server_model import LESIONS, META, hu_band_server, lesion_phantom

# py310: also run on CPython 3.10 by make test (tests/docker/test_client_py310.py): annotate end to end
pytestmark = [pytest.mark.server, pytest.mark.slow, pytest.mark.py310]
ORIENTATIONS = ["RAS", "LPS", "PLI", "ASL", "IRP"]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    """A server for the module; it must leave no shared-memory region behind."""
    with hu_band_server(tmp_path_factory.mktemp("client-server")) as server:
        yield server.urls["grpc"]


def annotate(url, *args):
    result = CliRunner().invoke(main, ["annotate", *map(str, args), "--url", url, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def check_case(case_dir, hu_shape, affine, mask):
    """Output grid equals the input's; each phantom lesion comes back, kept, at its world position."""
    img = nib.load(str(case_dir / "labels.nii.gz"))
    assert img.shape == hu_shape
    np.testing.assert_allclose(img.affine, affine, atol=1e-4)
    np.testing.assert_allclose(img.get_qform(), img.get_sform(), atol=1e-4)
    labels = np.asarray(img.dataobj)
    pdac = labels == 3
    # every lesion voxel is PDAC, and PDAC reaches at most two voxels past the spheres (the sensitive
    # threshold 0.003 and trilinear resampling widen the boundary): a flip or swap fails both
    assert (pdac & mask).sum() >= 0.98 * mask.sum(), "lesion voxels not labelled PDAC"
    assert not (pdac & ~ndimage.binary_dilation(mask, iterations=2)).any(), "PDAC away from the lesions"
    report = json.loads((case_dir / "report.json").read_text())
    kept = [x for x in report["lesions"] if x["decision"] == "kept"]
    assert len(kept) == len(LESIONS), report["lesions"]
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    for centre, _ in LESIONS:
        near = min(kept, key=lambda x: np.linalg.norm(np.subtract(x["centroid_mm"], centre)))
        assert np.linalg.norm(np.subtract(near["centroid_mm"], centre)) < spacing.max()
        world = affine[:3, :3] @ np.array(near["centroid_voxel"]) + affine[:3, 3]
        np.testing.assert_allclose(world, near["centroid_mm"], atol=1e-2)
    return labels, report


def test_health_and_models(url):
    r = CliRunner().invoke(main, ["health", "--url", url, "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["live"] and info["ready"] and info["ensemble_ready"]
    assert info["theta"] == META["theta"] and info["model_spacing"] == META["spacing"]
    assert (info["model_name"], info["model_version"]) == ("hu-band", "test")
    assert {"eanno_annotate", "eanno_window", "eanno_segmenter", "eanno_postproc"} <= {
        m["name"] for m in info["models"]
    }
    r = CliRunner().invoke(main, ["models", "--url", url])
    assert r.exit_code == 0 and "eanno_annotate" in r.output and "READY" in r.output


@pytest.mark.parametrize("codes", ORIENTATIONS)
def test_orientation_round_trip(url, tmp_path, codes):
    hu, affine, mask = lesion_phantom(codes)
    src = save_nifti(tmp_path / f"{codes}.nii.gz", hu, affine)
    ras_hu, ras_affine, _ = lesion_phantom("RAS")
    ref = save_nifti(tmp_path / "reference.nii.gz", ras_hu, ras_affine)
    summary = annotate(url, src, ref, "--out", tmp_path / "out", "--header", "Authorization: Bearer test")
    assert summary["done"] == 2
    labels, _ = check_case(tmp_path / "out" / codes, hu.shape, affine, mask)
    # the server saw the same canonical volume whatever the storage order: identical labels in RAS
    reference = nib.load(str(tmp_path / "out" / "reference" / "labels.nii.gz"))
    can = nib.as_closest_canonical(nib.Nifti1Image(labels, affine))
    np.testing.assert_allclose(can.affine, reference.affine, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(can.dataobj), np.asarray(reference.dataobj))


def test_dicom_series_end_to_end(url, tmp_path):
    pytest.importorskip("highdicom")
    hu, affine, mask = lesion_phantom("LPS")
    write_dicom_series(tmp_path / "series", hu, affine, slope=0.5, intercept=-1100.0)
    summary = annotate(url, tmp_path / "series", "--out", tmp_path / "out", "--dicom-seg")
    assert summary["cases"][0]["note"].startswith("series ")
    check_case(tmp_path / "out" / "series", hu.shape, affine, mask)
    assert (tmp_path / "out" / "series" / "seg.dcm").is_file()


def test_continue_after_an_interrupted_batch(url, tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    for codes in ("RAS", "LPS", "PLI", "ASL"):
        hu, affine, _ = lesion_phantom(codes)
        save_nifti(cases / f"{codes}.nii.gz", hu, affine)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "eanno_client.cli",
        "annotate",
        str(cases),
        "--out",
        str(out),
        "--url",
        url,
        "-j",
        "1",
        "--no-preview",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / "ASL" / "report.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # as a power cut would: no clean-up code runs
    proc.wait()
    r = CliRunner().invoke(
        main,
        ["annotate", str(cases), "--out", str(out), "--url", url, "--continue", "--no-preview", "--json"],
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    status = {c["case"]: c["status"] for c in summary["cases"]}
    assert status["ASL"] == "skipped", status
    assert summary["done"] >= 1, "the first run finished before it was interrupted: nothing was tested"
    assert summary["done"] + summary["skipped"] == 4
    for codes in status:
        hu, affine, mask = lesion_phantom(codes)
        check_case(out / codes, hu.shape, affine, mask)


def test_threshold_and_rules_overrides_reach_the_server(url, tmp_path):
    """A contrast window that excludes the lesions relabels them: kept nowhere, all in removed.nii.gz."""
    hu, affine, mask = lesion_phantom("PLI")
    src = save_nifti(tmp_path / "case.nii.gz", hu, affine)
    rules = json.dumps({"hu_window": {"pdac": [-206, 20]}})
    annotate(url, src, "--out", tmp_path / "out", "--threshold", "0.5", "--rules", rules, "--no-preview")
    case = tmp_path / "out" / "case"
    report = json.loads((case / "report.json").read_text())
    assert report["theta"] == 0.5
    assert report["lesions"] and all(x["decision"] == "relabelled_contrast" for x in report["lesions"])
    labels = np.asarray(nib.load(str(case / "labels.nii.gz")).dataobj)
    removed = nib.load(str(case / "removed.nii.gz"))
    np.testing.assert_allclose(removed.affine, affine, atol=1e-4)
    removed = np.asarray(removed.dataobj)
    assert not (labels == 3).any() and labels[mask].min() == 1
    assert (removed[mask] == 3).mean() > 0.98 and not (
        removed & ~ndimage.binary_dilation(mask, iterations=2)
    ).any()
