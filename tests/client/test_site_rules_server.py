"""A site's rules end to end: written into the repository, loaded by the post-processing model, named in
every report (source and hash), overridden per request by `eanno-client --rules` (YAML file, JSON file or
inline JSON). The repository is written by write_repository, the writer `eanno-export repository --rules`
calls (tests/export/test_checkpoint_export.py checks that command's files)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from eanno_client.cli import main
from eanno_serving.local import LocalServer, free_ports
from eanno_serving.repository import ServingSpec, write_repository

from .conftest import save_nifti
from .server_model import META, hu_band_onnx, lesion_phantom

pytestmark = [pytest.mark.server, pytest.mark.slow]
# No lesion may exceed 0 % of the pancreas: every candidate the defaults keep is relabelled pancreas.
SITE_RULES = "# the site's rules\nvolume_ratio_limit: {pdac: 0, cyst: 0, pnet: 0}\n"
DEFAULT_LIMITS = {"volume_ratio_limit": {"pdac": 133, "cyst": 83, "pnet": 46}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("site-rules")
    spec = ServingSpec(META, name="hu-band", version="test", rules_text=SITE_RULES, rules_source="site.yaml")
    repo = write_repository(spec, "python-onnxruntime", folder / "repo", hu_band_onnx(folder / "model.onnx"))
    grpc, http, metrics = free_ports()
    with LocalServer(repo, grpc_port=grpc, http_port=http, metrics_port=metrics, run_dir=folder / "run") as s:
        yield s


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    hu, affine, _ = lesion_phantom("RAS")
    return save_nifti(tmp_path_factory.mktemp("case") / "case.nii.gz", hu, affine)


def annotate(server: LocalServer, case: Path, out: Path, *rules: str) -> dict:
    result = CliRunner().invoke(
        main,
        [
            "annotate",
            str(case),
            "--out",
            str(out),
            "--url",
            server.urls["grpc"],
            "--no-preview",
            "--json",
            *(["--rules", *rules] if rules else []),
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads((out / "case" / "report.json").read_text())


def decisions(report: dict) -> set[str]:
    return {lesion["decision"] for lesion in report["lesions"]}


def test_the_repository_rules_are_in_force_and_named(server, case, tmp_path) -> None:
    report = annotate(server, case, tmp_path / "out")
    named = {k: report["rules"][k] for k in ("source", "sha256", "overrides")}
    assert named == {
        "source": "site.yaml",
        "sha256": hashlib.sha256(SITE_RULES.encode()).hexdigest(),
        "overrides": None,
    }
    assert report["rules"]["volume_ratio_limit"] == {"pdac": 0, "cyst": 0, "pnet": 0}  # the values in force
    assert report["lesions"] and decisions(report) == {"relabelled_volume_ratio"}, decisions(report)


@pytest.mark.parametrize("form", ["yaml-file", "json-file", "inline-json"])
def test_client_rules_override_the_site_rules_in_every_form(server, case, tmp_path, form) -> None:
    if form == "yaml-file":
        arg = tmp_path / "limits.yaml"
        arg.write_text(
            "# back to the paper's limits\nvolume_ratio_limit:\n  pdac: 133\n  cyst: 83\n  pnet: 46\n"
        )
    elif form == "json-file":
        arg = tmp_path / "limits.json"
        arg.write_text(json.dumps(DEFAULT_LIMITS))
    else:
        arg = json.dumps(DEFAULT_LIMITS)
    report = annotate(server, case, tmp_path / "out", str(arg))
    assert "kept" in decisions(report), decisions(report)
    assert report["rules"]["source"] == "site.yaml" and report["rules"]["overrides"] == DEFAULT_LIMITS
    labels = np.asarray(nib.load(tmp_path / "out" / "case" / "labels.nii.gz").dataobj)
    assert (labels >= 3).any(), "kept lesions must be in the label file"


def test_bad_client_rules_are_refused_with_the_servers_reason(server, case, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("conectivity: 6\n")
    result = CliRunner().invoke(
        main,
        [
            "annotate",
            str(case),
            "--out",
            str(tmp_path / "out"),
            "--url",
            server.urls["grpc"],
            "--no-preview",
            "--json",
            "--rules",
            str(bad),
        ],
    )
    assert result.exit_code == 4
    error = json.loads(result.stdout)["cases"][0]["error"]
    assert "INVALID_ARGUMENT" in error and "unknown key 'conectivity'" in error, error
    unreadable = CliRunner().invoke(
        main, ["annotate", str(case), "--out", str(tmp_path / "o2"), "--rules", str(tmp_path / "absent.yaml")]
    )
    assert unreadable.exit_code == 2 and "absent.yaml: cannot read the rules file" in unreadable.output
