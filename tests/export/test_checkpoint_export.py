"""eanno-export onnx / repository from a real eanno-checkpoint/1 file (a small TransUNet, random weights)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from eanno_export.cli import main
from eanno_export.repository import SOURCE_FILE
from eanno_training.checkpoint import CLASS_NAMES, make_meta, save_checkpoint, shipped_checkpoint_path
from eanno_training.models import ModelConfig, build_model
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A decoder-only TransUNet (the paper group's pancreas variant), shrunk, saved as a checkpoint."""
    import torch

    torch.manual_seed(0)
    cfg = ModelConfig(
        arch="transunet",
        variant="decoder",
        patch_size=(32, 32, 16),
        base_features=8,
        max_features=32,
        n_pool=3,
        dec_levels=2,
        dec_width=32,
        dec_heads=4,
        dec_ffn=64,
        dec_queries=4,
        dec_layers=1,
        mask_dim=8,
    )
    meta = make_meta(
        CLASS_NAMES,
        (1.5, 1.5, 2.0),
        (32, 32, 16),
        40.0,
        200.0,
        theta=0.0123,
        train={"command": "tests/export fixture", "seed": 0},
    )
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "small.pt", build_model(cfg), cfg, meta)


def test_onnx_command_prints_parity_within_tolerance(checkpoint, tmp_path) -> None:
    result = CliRunner().invoke(
        main, ["onnx", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "m.onnx"), "--json"]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.output.strip().splitlines()[-1])
    assert info["parity_max_abs"]["random"] <= 1e-3 and info["parity_max_abs"]["phantom"] <= 1e-3
    assert info["theta"] == 0.0123 and (tmp_path / "m.onnx").stat().st_size > 0


def test_onnx_command_names_a_missing_checkpoint(tmp_path) -> None:
    result = CliRunner().invoke(
        main, ["onnx", "--checkpoint", str(tmp_path / "no.pt"), "--out", str(tmp_path / "m.onnx")]
    )
    assert result.exit_code == 1 and "no.pt" in result.output and "Traceback" not in result.output


def test_repository_command_writes_each_flavor_and_reuses(checkpoint, tmp_path) -> None:
    runner = CliRunner()
    out = tmp_path / "repo"
    args = [
        "repository",
        "--flavor",
        "python-onnxruntime",
        "--out",
        str(out),
        "--checkpoint",
        str(checkpoint),
    ]
    reuse = [*args, "--reuse"]
    first = runner.invoke(main, reuse)
    assert first.exit_code == 0, first.output
    assert "parity" in first.output
    config = text_format.Parse(
        (out / "eanno_annotate" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
    )
    assert float(config.parameters["theta"].string_value) == 0.0123
    assert json.loads((out / SOURCE_FILE).read_text())["checkpoint"] == str(checkpoint.resolve())
    again = runner.invoke(main, reuse)
    assert again.exit_code == 0 and "segmenter: reused" in again.output
    source = json.loads((out / SOURCE_FILE).read_text())
    (out / SOURCE_FILE).write_text(json.dumps({**source, "serving_code": "written by older serving code"}))
    stale = runner.invoke(main, reuse)
    assert stale.exit_code == 0 and "segmenter: reused" not in stale.output and "parity" in stale.output
    assert json.loads((out / SOURCE_FILE).read_text()) == source
    trt = runner.invoke(
        main,
        [
            "repository",
            "--flavor",
            "tensorrt",
            "--out",
            str(tmp_path / "trt"),
            "--checkpoint",
            str(checkpoint),
        ],
    )
    assert trt.exit_code == 0, trt.output
    assert (tmp_path / "trt" / "eanno_segmenter" / "model.onnx").is_file()


@pytest.mark.skipif(
    not shipped_checkpoint_path().is_file(), reason="the shipped checkpoint has not landed yet"
)
def test_default_server_repository_is_generated_from_the_shipped_checkpoint(tmp_path) -> None:
    from eanno_serving.default import default_repository

    repo = default_repository(tmp_path)
    assert (repo / "eanno_segmenter" / "1" / "model.onnx").is_file()
    source = json.loads((repo / SOURCE_FILE).read_text())
    assert source["checkpoint"] == str(shipped_checkpoint_path().resolve())


def test_server_default_repository_runs_eanno_export_once_then_reuses(checkpoint, tmp_path) -> None:
    from eanno_serving.default import default_repository

    repo = default_repository(tmp_path, checkpoint)
    onnx = repo / "eanno_segmenter" / "1" / "model.onnx"
    first = onnx.stat().st_mtime_ns
    assert default_repository(tmp_path, checkpoint) == repo
    assert onnx.stat().st_mtime_ns == first  # reused, not rewritten


def test_repository_command_carries_a_sites_rules_file(checkpoint, tmp_path) -> None:
    """`eanno-export repository --rules site.yaml`: validated, copied beside eanno_postproc's config, named in
    its parameters (tests/client/test_site_rules_server.py serves such a repository)."""
    import hashlib

    site = tmp_path / "site.yaml"
    site.write_text("connectivity: 6\nhu_window: {cyst: [-40, 200]}\n")
    out = tmp_path / "repo"
    result = CliRunner().invoke(
        main,
        [
            "repository",
            "--flavor",
            "python-onnxruntime",
            "--out",
            str(out),
            "--checkpoint",
            str(checkpoint),
            "--rules",
            str(site),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "rules: " + str(site) in result.output
    assert (out / "eanno_postproc" / "rules.yaml").read_text() == site.read_text()
    config = text_format.Parse(
        (out / "eanno_postproc" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
    )
    params = {k: v.string_value for k, v in config.parameters.items()}
    assert params["rules_file"] == "rules.yaml" and params["rules_source"] == "site.yaml"
    assert params["rules_sha256"] == hashlib.sha256(site.read_bytes()).hexdigest()
    bad = tmp_path / "bad.yaml"
    bad.write_text("hu_window: {cyst: [300, 200]}\n")
    refused = CliRunner().invoke(
        main,
        [
            "repository",
            "--flavor",
            "python-onnxruntime",
            "--out",
            str(tmp_path / "r2"),
            "--checkpoint",
            str(checkpoint),
            "--rules",
            str(bad),
        ],
    )
    assert refused.exit_code == 1 and str(bad) in refused.output and "hu_window.cyst" in refused.output
    assert not (tmp_path / "r2").exists()
