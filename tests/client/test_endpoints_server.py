"""Against real Triton servers: the readiness check (a ready server, an HTTP port given as gRPC, an ensemble
that failed to load), --version with --url, nnU-Net names in the flat layout, and two endpoints with one
killed mid-batch (every case done once, on the other) plus a load test that reports each one's share."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from eanno_client.cli import main
from eanno_serving.local import LocalServer, free_ports

from .conftest import save_nifti
from .faults_helpers import check_outputs_whole, client_cmd, client_env, partial_files
from .server_model import hu_band_repository, hu_band_server, lesion_phantom

pytestmark = [pytest.mark.server, pytest.mark.slow]
CODES = ("RAS", "LPS", "PLI", "ASL", "IRP", "SAL", "RAI", "LAS")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with hu_band_server(tmp_path_factory.mktemp("endpoint-a")) as s:
        yield s


def write_cases(folder, codes=CODES):
    folder.mkdir(parents=True, exist_ok=True)
    for c in codes:
        hu, affine, _ = lesion_phantom(c)
        save_nifti(folder / f"{c}_0000.nii.gz", hu, affine)  # nnU-Net channel names
    return folder


def answered(server) -> int:
    """Requests the ensemble of `server` has answered, from its own metrics (the loadtest's counted too)."""
    from eanno_client.server_metrics import fetch_metrics

    return (
        int(fetch_metrics(server.urls["metrics"]).get("eanno_annotate", {}).get("success", 0))
        - server.loadtest
    )


def test_ready_server_version_and_http_port_hint(server, tmp_path):
    r = CliRunner().invoke(main, ["--version", "--url", server.urls["grpc"]])
    assert (
        r.exit_code == 0 and f"server {server.urls['grpc']}: model hu-band vtest (ensemble ready)" in r.output
    )
    http = server.urls["http"]  # http://127.0.0.1:PORT: read as gRPC HOST:PORT, which answers HTTP/1
    hu, affine, _ = lesion_phantom("RAS")
    path = save_nifti(tmp_path / "ct.nii.gz", hu, affine)
    r = CliRunner().invoke(main, ["annotate", str(path), "--out", str(tmp_path / "o"), "--url", http])
    assert r.exit_code == 3, r.output
    assert "taking http://HOST:PORT as the gRPC address" in r.output
    assert "is Triton's HTTP port, not gRPC" in r.output and "8001" in r.output, r.output
    metrics = server.urls["metrics"].split("//")[1].split("/")[0]
    r = CliRunner().invoke(main, ["annotate", str(path), "--out", str(tmp_path / "o"), "--url", metrics])
    assert r.exit_code == 3 and "is Triton's metrics port, not gRPC" in r.output, r.output


def test_flat_layout_with_nnunet_names_on_a_real_server(server, tmp_path):
    cases = write_cases(tmp_path / "imagesTs", CODES[:2])
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        r = CliRunner().invoke(
            main,
            [
                "annotate",
                str(cases),
                "--out",
                str(out),
                "--url",
                server.urls["grpc"],
                "--layout",
                "flat",
                "--json",
            ],
        )
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["LPS.json", "LPS.nii.gz", "RAS.json", "RAS.nii.gz"]
    for code in CODES[:2]:
        hu, affine, mask = lesion_phantom(code)
        img = nib.load(str(out / f"{code}.nii.gz"))
        labels = np.asanyarray(img.dataobj)
        assert labels.shape == hu.shape and np.allclose(img.affine, affine)
        assert (labels[mask] == 3).mean() > 0.9  # the spheres come back as PDAC where they are
        assert json.loads((out / f"{code}.json").read_text())["case"] == code
        assert stat.S_IMODE((out / f"{code}.nii.gz").stat().st_mode) == 0o644


def test_ensemble_that_failed_to_load_is_named_with_its_reason(tmp_path):
    repo = hu_band_repository(tmp_path / "broken")
    onnx_files = list((repo / "eanno_segmenter").rglob("*.onnx"))
    assert onnx_files, sorted(p.relative_to(repo) for p in repo.rglob("*"))
    for f in onnx_files:
        f.write_bytes(b"not an ONNX model")
    grpc, http, metrics = free_ports()
    # a server that stays up with a model that failed (the default here exits on any error)
    srv = LocalServer(
        repo,
        grpc_port=grpc,
        http_port=http,
        metrics_port=metrics,
        run_dir=tmp_path / "run",
        extra_args=["--exit-on-error=false", "--strict-readiness=false"],
    )
    with srv:
        hu, affine, _ = lesion_phantom("RAS")
        path = save_nifti(tmp_path / "ct.nii.gz", hu, affine)
        r = CliRunner().invoke(
            main, ["annotate", str(path), "--out", str(tmp_path / "o"), "--url", srv.urls["grpc"]]
        )
    assert r.exit_code == 1, r.output
    assert "the ensemble eanno_annotate is not ready" in r.output
    assert "eanno_segmenter v1 UNAVAILABLE:" in r.output, (
        r.output
    )  # which model, and Triton's reason after it
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_two_endpoints_one_killed_mid_batch(server, tmp_path):
    """Cases spread over two servers; B dies (SIGKILL) after the first answers: every case is done, once."""
    with hu_band_server(tmp_path / "b") as b:
        a_url, b_url = server.urls["grpc"], b.urls["grpc"]
        load = tmp_path / "load.json"
        r = CliRunner().invoke(
            main,
            [
                "loadtest",
                "--url",
                a_url,
                "--url",
                b_url,
                "--synthetic",
                "40x36x20",
                "--spacing",
                "1.5,1.5,2.0",
                "-c",
                "2",
                "--requests",
                "6",
                "--warmup",
                "0",
                "--json",
                str(load),
            ],
        )
        assert r.exit_code == 0, r.output
        shares = json.loads(load.read_text())["steps"][0]["endpoints"]
        assert set(shares) == {a_url, b_url} and sum(e["ok"] for e in shares.values()) == 6
        assert all(e["ok"] >= 1 for e in shares.values()), shares  # least busy: both take work at c=2
        assert a_url in r.output and "%" in r.output  # the table shows each endpoint's share
        b.loadtest = shares[b_url]["ok"]

        cases = write_cases(tmp_path / "cases")
        out = tmp_path / "out"
        proc = subprocess.Popen(
            client_cmd(
                "annotate",
                cases,
                "--out",
                out,
                "--url",
                a_url,
                "--url",
                b_url,
                "-j",
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
        while answered(b) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(b.state.pid, signal.SIGKILL)  # B dies as in a crash, after its first answer
        stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout)
    names = [c["case"] for c in summary["cases"]]
    assert sorted(names) == sorted(CODES) and summary["done"] == len(CODES) and summary["failed"] == 0
    served = summary["endpoints"]
    # none lost, none done twice: the answers the client took add up to the cases exactly
    assert served[a_url]["done"] + served[b_url]["done"] == len(CODES), served
    assert served[b_url]["done"] >= 1 and served[a_url]["done"] >= 1, served
    assert {c["endpoint"] for c in summary["cases"]} == {a_url, b_url}
    assert served[b_url]["failed_over"] >= 1 and "stopped answering; sending it to another endpoint" in stderr
    assert check_outputs_whole(out) == len(CODES) and partial_files(out) == []
    assert not (out / "failures.jsonl").exists()


def test_open_loop_range_csv_and_capacity_on_a_real_server(server, tmp_path):
    """Poisson arrivals at a stated rate, perf_analyzer's range spelling, CSV beside JSON, CTs/hour at p95."""
    base = [
        "loadtest",
        "--url",
        server.urls["grpc"],
        "--synthetic",
        "40x36x20",
        "--spacing",
        "1.5,1.5,2.0",
        "--warmup",
        "1",
        "--no-metrics",
    ]
    out, csv_path = tmp_path / "open.json", tmp_path / "open.csv"
    r = CliRunner().invoke(
        main,
        [
            *base,
            "--request-rate",
            "2,4",
            "--requests",
            "4",
            "--p95",
            "600",
            "--json",
            str(out),
            "--csv",
            str(csv_path),
        ],
    )
    assert r.exit_code == 0, r.output
    result = json.loads(out.read_text())
    assert [(s["mode"], s["request_rate"], s["ok"]) for s in result["steps"]] == [
        ("open", 2.0, 4),
        ("open", 4.0, 4),
    ]
    for s in result["steps"]:
        assert s["latency_ms"]["p95"] > 0 and s["cts_per_hour"] > 0
    cap = result["capacity"]
    assert cap["step"]["mode"] == "open" and cap["cts_per_hour"] == max(
        s["cts_per_hour"] for s in result["steps"]
    )
    assert "CTs/hour with p95" in r.output
    rows = csv_path.read_text().splitlines()
    assert len(rows) == 3 and rows[1].startswith("open,,2.0,4,4,0,")
    r = CliRunner().invoke(main, [*base, "--concurrency-range", "1:2", "--requests", "2", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert [(s["mode"], s["concurrency"]) for s in json.loads(out.read_text())["steps"]] == [
        ("closed", 1),
        ("closed", 2),
    ]
