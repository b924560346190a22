"""Admission through a real server: a window with one slot and two instances refuses concurrent requests
"server busy"; the client backs off and retries; every case is done once, none lost, none mixed up."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from .conftest import make_phantom, save_nifti
from .faults_helpers import limited_repository, partial_files, run_client, start_server

pytestmark = [pytest.mark.server]


def test_busy_server_refuses_client_retries_no_case_lost(tmp_path) -> None:
    repo = limited_repository(tmp_path / "repo", max_voxels=10**7, admission_slots=1, window_instances=2)
    cases = tmp_path / "cases"
    cases.mkdir()
    # 3 distinct phantoms, each twice under another name: copies must come back identical, others differ.
    for seed in range(3):
        p = make_phantom(seed=20 + seed, shape=(64, 56, 32))
        first = save_nifti(cases / f"p{seed}a.nii.gz", np.asarray(p.ct, np.int16), p.affine)
        shutil.copy(first, cases / f"p{seed}b.nii.gz")
    server = start_server(repo, tmp_path / "run")
    try:
        r = run_client(
            "annotate",
            cases,
            "--out",
            tmp_path / "out",
            "--url",
            server.urls["grpc"],
            "--no-preview",
            "--json",
            "-j",
            "6",
            "--retries",
            "0",
            timeout=600,
        )
        log_text = Path(server.state.log).read_text()
    finally:
        server.stop()
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout)
    assert summary["done"] == 6 and summary["failed"] == 0, summary
    assert sorted(c["case"] for c in summary["cases"]) == sorted(
        p.name.removesuffix(".nii.gz") for p in cases.iterdir()
    )
    retries = sum(c["retries"] for c in summary["cases"])
    refusals = log_text.count("server busy")
    print(f"client retries {retries}, server refusals logged {refusals}")
    assert retries >= 1, "no request was refused: the test did not exercise admission"
    assert refusals == retries, (refusals, retries)  # server-side evidence: one logged refusal per retry
    assert "retry" in r.stderr and "server busy" in r.stderr  # the client says why it waits
    assert not partial_files(tmp_path / "out")
    labels = {
        c["case"]: np.asarray(
            nib.load(str(next((tmp_path / "out" / c["case"]).rglob("labels.nii.gz")))).dataobj
        )
        for c in summary["cases"]
    }
    assert len(list((tmp_path / "out").glob("p*"))) == 6  # one folder per case, nothing twice
    for seed in range(3):
        assert np.array_equal(labels[f"p{seed}a"], labels[f"p{seed}b"])
        assert labels[f"p{seed}a"].any()
    assert not np.array_equal(labels["p0a"], labels["p1a"])
