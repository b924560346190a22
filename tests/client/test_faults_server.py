"""Faults against a real Triton server: server-side limits reach the client, a killed server is retried
then reported and --continue completes after a restart, timeouts are honoured, SIGINT leaves no partial
file, DICOM patient identifiers appear in no log, report or file name, and the server binds 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from eanno_client.cli import main
from eanno_client.connection import Connection, ConnectionConfig, ServerConnectionError

from .conftest import save_nifti, write_dicom_series
from .faults_helpers import (
    MAX_VOXELS,
    check_outputs_whole,
    client_cmd,
    client_env,
    free_ports,
    limited_repository,
    partial_files,
    run_client,
    start_server,
)
from .server_model import lesion_phantom

pytestmark = [pytest.mark.server, pytest.mark.slow]
CODES = ("RAS", "LPS", "PLI", "ASL", "IRP", "SAL")


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    return limited_repository(tmp_path_factory.mktemp("limited"))


@pytest.fixture(scope="module")
def server(repository, tmp_path_factory):
    """One server for the module; it must leave no shared-memory region behind."""
    srv = start_server(repository, tmp_path_factory.mktemp("run"))
    prefix = srv.state.shm_prefix
    yield srv
    srv.stop()
    assert srv.leftover_shm(prefix) == []


@pytest.fixture(scope="module")
def url(server):
    return server.urls["grpc"]


def write_cases(folder, codes=CODES):
    folder.mkdir(parents=True, exist_ok=True)
    for c in codes:
        hu, affine, _ = lesion_phantom(c)
        save_nifti(folder / f"{c}.nii.gz", hu, affine)
    return folder


# -- server-side limits --------------------------------------------------------------------------------


def test_volume_over_the_server_limit_is_refused_with_a_clear_error(url, tmp_path) -> None:
    hu = np.full((80, 80, 60), 40, np.int16)  # 384,000 voxels > MAX_VOXELS
    hu[:4] = -1000
    small, affine, _ = lesion_phantom("RAS")
    big = save_nifti(tmp_path / "big.nii.gz", hu, np.diag([1.5, 1.5, 2.0, 1.0]))
    ok = save_nifti(tmp_path / "ok.nii.gz", small, affine)
    r = CliRunner().invoke(
        main,
        [
            "annotate",
            str(big),
            str(ok),
            "--out",
            str(tmp_path / "out"),
            "--url",
            url,
            "--json",
            "--no-preview",
        ],
    )
    assert r.exit_code == 4
    cases = {c["case"]: c for c in json.loads(r.stdout)["cases"]}
    assert cases["ok"]["status"] == "done", "the batch must go on past the refused case"
    assert f"volume too large: [80, 80, 60] = 384000 voxels > limit {MAX_VOXELS}" in cases["big"]["error"]
    assert not (tmp_path / "out" / "big").exists()


@pytest.mark.parametrize(
    "spacing,words",
    [([0.0, 1.0, 1.0], "spacing"), ([np.nan, 1.0, 1.0], "spacing"), ([-1.5, 1.5, 2.0], "spacing")],
)
def test_invalid_spacing_is_refused_by_the_server(url, spacing, words) -> None:
    with Connection(ConnectionConfig(url=url, retries=0)) as conn:
        with pytest.raises(ServerConnectionError) as e:
            conn.annotate(np.zeros((20, 20, 10), np.int16), np.array(spacing), np.eye(4))
    assert "INVALID_ARG" in str(e.value) or "spacing" in str(e.value)
    assert words in str(e.value), str(e.value)


def test_empty_and_all_lesion_volumes_come_back(url) -> None:
    """Post-processing never raises: a volume with no tissue, and one that is lesion everywhere."""
    with Connection(ConnectionConfig(url=url, retries=0)) as conn:
        for value in (-1000, 30):  # air only; every voxel at the lesion HU of the HU-band model
            vol = np.full((30, 28, 14), value, np.int16)
            labels, removed, report = conn.annotate(vol, np.array([1.5, 1.5, 2.0]), np.eye(4))
            assert labels.shape == vol.shape and isinstance(report["lesions"], list)
            assert report["summary"]["pancreas_empty"] is True
            if value == -1000:
                assert not labels.any() and not removed.any() and report["lesions"] == []
            else:  # one lesion filling the volume, no pancreas around it: removed, and said so
                assert [(x["class"], x["decision"]) for x in report["lesions"]] == [
                    ("pancreatic_pdac", "removed_outside_pancreas")
                ]
                assert not labels.any() and (removed == 3).all()


# -- timeouts ------------------------------------------------------------------------------------------


def test_timeout_is_honoured(server, url, tmp_path) -> None:
    """A request slower than --timeout fails with DEADLINE_EXCEEDED, by the client's own deadline, not retried.

    No clock is compared: the server is stopped (SIGSTOP) while the request is made, so it is slower than any
    --timeout on any machine. The kernel still accepts the connection; only the client's deadline can end the
    call, and the case must say that it was sent once although --retries allowed more.
    """
    hu = np.full((80, 80, 40), 40, np.int16)
    hu[:4] = -1000
    path = save_nifti(tmp_path / "slow.nii.gz", hu, np.diag([3.0, 3.0, 4.0, 1.0]))
    r = run_client("annotate", path, "--out", tmp_path / "full", "--url", url, "--no-preview", "--json")
    assert r.returncode == 0, r.stderr  # the very request is served: below, only the deadline can fail it
    out = tmp_path / "out"
    os.kill(server.state.pid, signal.SIGSTOP)
    try:
        # --no-check: the readiness check would meet the stopped server first; the annotate request is tested
        # the hang guard (timeout=) is far beyond --timeout: a client that ignored its deadline would hang forever
        r = run_client(
            "annotate",
            path,
            "--out",
            out,
            "--url",
            url,
            "--timeout",
            0.5,
            "--retries",
            3,
            "--no-check",
            "--json",
            timeout=300,
        )
    finally:
        os.kill(server.state.pid, signal.SIGCONT)
    assert r.returncode == 4, (r.returncode, r.stderr)
    case = json.loads(r.stdout)["cases"][0]
    assert "DEADLINE_EXCEEDED" in case["error"] and "--timeout 0.5 s" in case["error"], case
    assert case["attempts"] == 1, case  # --retries 3 was allowed: a deadline is not retried
    assert not (out / "slow").exists() and partial_files(out) == []
    # resumed, the server serves again: the stop harmed nothing the other tests use
    r = run_client("annotate", path, "--out", out, "--url", url, "--no-preview", "--json")
    assert r.returncode == 0, r.stderr


# -- SIGINT --------------------------------------------------------------------------------------------


def test_sigint_leaves_no_partial_files_and_a_clean_message(url, tmp_path) -> None:
    # Three rounds of the six orientations: on a loaded machine the watcher below may see the first
    # report late, and six small cases could all be done before the signal lands (seen once: exit 0).
    cases = tmp_path / "cases"
    cases.mkdir()
    for i, c in enumerate(CODES * 3):
        hu, affine, _ = lesion_phantom(c)
        save_nifti(cases / f"{c}{i}.nii.gz", hu, affine)
    n = len(CODES) * 3
    out = tmp_path / "out"
    proc = subprocess.Popen(
        client_cmd("annotate", cases, "--out", out, "--url", url, "-j", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=client_env(),
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("*/report.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (proc.returncode, stderr)
    assert "interrupted" in stderr and "--continue" in stderr and "Traceback" not in stderr, stderr
    assert partial_files(out) == []
    done = check_outputs_whole(out)
    assert 1 <= done < n, "the interrupt came too late to test anything"
    r = run_client("annotate", cases, "--out", out, "--url", url, "--continue", "--json")
    summary = json.loads(r.stdout)
    assert r.returncode == 0 and summary["done"] + summary["skipped"] == n and summary["skipped"] >= 1


# -- patient identifiers -------------------------------------------------------------------------------

PHI = {
    "PatientName": "Doe^Janet",
    "PatientID": "MRN-99812",
    "PatientBirthDate": "19610412",
    "OtherPatientIDs": "ALT-5521",
    "PatientAddress": "12 Elm Street",
}
PHI_STRINGS = ["Doe", "Janet", "MRN-99812", "19610412", "ALT-5521", "Elm Street"]


def test_no_patient_identifiers_in_logs_reports_or_file_names(url, tmp_path) -> None:
    hu, affine, _ = lesion_phantom("LPS")
    series = tmp_path / "series"
    write_dicom_series(series, hu, affine)
    for path in series.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        for key, value in PHI.items():
            setattr(ds, key, value)
        ds.save_as(path)
    out = tmp_path / "out"
    r = run_client("-vv", "annotate", series, "--out", out, "--url", url, "--json")
    assert r.returncode == 0, r.stderr
    texts = {"stdout": r.stdout, "stderr": r.stderr}
    for path in out.rglob("*"):
        texts[f"name {path}"] = str(path.relative_to(tmp_path))
        if path.is_file():
            raw = path.read_bytes()
            texts[str(path)] = (gzip.decompress(raw) if path.name.endswith(".gz") else raw).decode("latin-1")
    assert len(texts) > 10 and "INFO" in r.stderr  # the logs and outputs were really read
    leaks = [(where, s) for where, text in texts.items() for s in PHI_STRINGS if s in text]
    assert leaks == []
    # --keep-phi puts them in report.json, and only there
    r = run_client("annotate", series, "--out", tmp_path / "kept", "--url", url, "--keep-phi", "--no-preview")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "kept" / "series" / "report.json").read_text())
    assert report["input"]["patient"] == {
        "PatientID": "MRN-99812",
        "PatientName": "Doe^Janet",
        "PatientBirthDate": "19610412",
        "OtherPatientIDs": "ALT-5521",
    }
    summary = (tmp_path / "kept" / "series" / "summary.txt").read_text()
    assert not any(s in summary + r.stdout + r.stderr for s in PHI_STRINGS)


# -- binding -------------------------------------------------------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A = LISTEN
                found.add(addr)
    return found


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}


def test_local_server_binds_loopback_only(server) -> None:
    for name in ("grpc", "http", "metrics"):
        addrs = listening_addresses(server.ports[name])
        # 127.0.0.1 as /proc writes it (IPv4, or IPv4-mapped IPv6); never 0.0.0.0 or ::
        assert addrs and addrs <= LOOPBACK, (name, addrs)


# -- the server killed mid-batch -----------------------------------------------------------------------


def test_server_killed_mid_batch_then_continue_after_restart(repository, tmp_path) -> None:
    ports = free_ports()
    srv = start_server(repository, tmp_path / "run", ports)
    url = srv.urls["grpc"]
    cases = write_cases(tmp_path / "cases")
    out = tmp_path / "out"
    try:
        proc = subprocess.Popen(
            client_cmd(
                "annotate",
                cases,
                "--out",
                out,
                "--url",
                url,
                "-j",
                "1",
                "--retries",
                "2",
                "--no-preview",
                "--json",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=client_env(),
        )
        deadline = time.monotonic() + 120
        while not list(out.glob("*/report.json")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(srv.state.pid, signal.SIGKILL)  # the server dies as in a crash
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        srv.stop()
    assert proc.returncode == 4, stderr
    summary = json.loads(stdout)
    failed = [c for c in summary["cases"] if c["status"] == "failed"]
    assert summary["done"] >= 1 and failed, summary
    assert "retry 1/2" in stderr and "retry 2/2" in stderr, stderr
    assert all("is the server running" in c["error"] for c in failed), failed
    logged = [json.loads(x)["case"] for x in (out / "failures.jsonl").read_text().splitlines()]
    assert sorted(logged) == sorted(c["case"] for c in failed)
    assert partial_files(out) == []
    srv = start_server(repository, tmp_path / "run", ports)  # same address: the user just restarts it
    try:
        r = run_client("annotate", cases, "--out", out, "--url", url, "--continue", "--no-preview", "--json")
    finally:
        srv.stop()
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout)
    assert again["skipped"] == summary["done"] and again["done"] == len(failed)
    assert check_outputs_whole(out) == len(CODES) and not (out / "failures.jsonl").exists()
