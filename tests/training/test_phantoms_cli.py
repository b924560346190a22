"""The `phantoms` command: files, JSON output, determinism and a clean error for an existing folder."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
from click.testing import CliRunner
from eanno_training.phantoms.cli import phantoms_command

ARGS = ["--n", "2", "--seed", "4", "--shape", "48,40,16", "--spacing", "2,2,4"]


def test_writes_a_set_and_refuses_to_overwrite(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(phantoms_command, ["--out", str(tmp_path / "set"), *ARGS, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    cases = [Path(c) for c in report["cases"]]
    assert [c.name for c in cases] == ["phantom_0000", "phantom_0001"]
    img = nib.load(cases[0] / "ct.nii.gz")
    assert img.shape == (48, 40, 16) and np.allclose(img.header.get_zooms(), (2, 2, 4))
    assert (cases[0] / "segmentations" / "pancreas.nii.gz").is_file()
    again = runner.invoke(phantoms_command, ["--out", str(tmp_path / "set"), *ARGS])
    assert again.exit_code == 1
    assert "exists" in again.output and "Traceback" not in again.output
    other = runner.invoke(phantoms_command, ["--out", str(tmp_path / "other"), *ARGS, "--json"])
    assert other.exit_code == 0
    first = np.asarray(nib.load(cases[1] / "ct.nii.gz").dataobj)
    assert np.array_equal(
        first, np.asarray(nib.load(tmp_path / "other" / "phantom_0001" / "ct.nii.gz").dataobj)
    )


def test_bad_spacing_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(phantoms_command, ["--out", str(tmp_path), "--spacing", "1,0,1"])
    assert result.exit_code == 2
    assert "positive" in result.output
