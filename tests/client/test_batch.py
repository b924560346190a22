"""Batches: atomic writes, --continue, the failure log and exit codes, with inputs of every kind."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from eanno_client.atomic import atomic_path, write_text_atomic
from eanno_client.cases import expand_inputs
from eanno_client.cli import main
from eanno_client.outputs import CasePaths, OutputOptions
from eanno_client.volume import InputError

from .conftest import make_phantom, save_itk, save_nifti, write_dicom_series


def closed_port() -> int:
    """A local port nobody listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "sub" / "report.json"
    write_text_atomic(final, "old")
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert final.read_text() == "old"
    assert sorted(p.name for p in final.parent.iterdir()) == ["report.json"]


def test_expand_inputs_kinds_and_names(tmp_path):
    p = make_phantom("LPS", shape=(16, 16, 6))
    save_nifti(tmp_path / "a.nii.gz", p.ct, p.affine)
    save_itk(tmp_path / "b.nrrd", p.ct, p.affine)
    write_dicom_series(tmp_path / "c_dicom", p.ct, p.affine)
    (tmp_path / "atlas" / "case9").mkdir(parents=True)
    save_nifti(tmp_path / "atlas" / "case9" / "ct.nii.gz", p.ct, p.affine)
    (tmp_path / "other").mkdir()
    save_nifti(tmp_path / "other" / "a.nii.gz", p.ct, p.affine)
    (tmp_path / "list.txt").write_text("# cases\natlas/case9\n\nother/a.nii.gz\n")
    cases = expand_inputs([tmp_path, tmp_path / "list.txt"])
    assert [(c.name, c.path.relative_to(tmp_path).as_posix()) for c in cases] == [
        ("a", "a.nii.gz"),
        ("b", "b.nrrd"),
        ("c_dicom", "c_dicom"),
        ("case9", "atlas/case9/ct.nii.gz"),
        ("a_2", "other/a.nii.gz"),
    ]
    with pytest.raises(InputError, match=r"list\.txt, line 1: .*nope: no such file"):
        (tmp_path / "list.txt").write_text("nope\n")
        expand_inputs([tmp_path / "list.txt"])


def test_continue_failure_log_and_exit_code(tmp_path):
    p = make_phantom("LPS", shape=(16, 16, 6))
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("done", "unreachable"):
        save_nifti(inputs / f"{name}.nii.gz", p.ct, p.affine)
    (inputs / "broken.nii.gz").write_bytes(b"\x1f\x8b garbage")
    out = tmp_path / "out"
    # 'done' finished in an earlier run: every output present
    for f in CasePaths(out / "done").expected(OutputOptions(), is_dicom=False):
        write_text_atomic(f, "x")
    args = [
        "annotate",
        str(inputs),
        "--out",
        str(out),
        "--continue",
        "--json",
        "--retries",
        "0",
        "--url",
        f"127.0.0.1:{closed_port()}",
    ]
    result = CliRunner().invoke(main, [*args, "--no-check"])  # each case meets the closed port on its own
    assert result.exit_code == 4, result.output
    summary = json.loads(result.stdout)
    status = {c["case"]: c["status"] for c in summary["cases"]}
    assert status == {"broken": "failed", "done": "skipped", "unreachable": "failed"}
    errors = {c["case"]: c["error"] for c in summary["cases"]}
    assert "broken.nii.gz: not a readable NIfTI" in errors["broken"]
    assert "UNAVAILABLE" in errors["unreachable"]
    log = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert sorted(x["case"] for x in log) == ["broken", "unreachable"]
    assert all(Path(x["input"]).is_file() and x["error"] for x in log)
    # the skipped case was not touched
    assert (out / "done" / "labels.nii.gz").read_text() == "x"

    # nothing left to do: no server needed, so no readiness check either
    only_done = CliRunner().invoke(main, [args[0], str(inputs / "done.nii.gz"), *args[2:]])
    assert only_done.exit_code == 0, only_done.output
    assert not (out / "failures.jsonl").exists()


def test_user_errors_exit_2_without_traceback(tmp_path):
    r = CliRunner().invoke(main, ["annotate", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "no such file or folder" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["annotate", str(tmp_path), "--out", str(tmp_path / "o"), "--header", "bad"])
    assert r.exit_code == 2 and "Name: value" in r.output
    r = CliRunner().invoke(main, ["health", "--url", f"127.0.0.1:{closed_port()}", "--retries", "0"])
    assert r.exit_code == 3 and "is the server running" in r.output
