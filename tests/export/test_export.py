"""eanno-export: ONNX export with parity, the TensorRT command where TensorRT is absent, repositories."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from eanno_contracts.errors import ExitCode
from eanno_contracts.labels import CLASS_NAMES
from eanno_export.cli import main
from eanno_export.onnx_export import PARITY_TOLERANCE, check_parity, export_network
from eanno_export.trt import NO_TENSORRT, tensorrt_version

META = {
    "classes": list(CLASS_NAMES),
    "spacing": [1.5, 1.5, 2.0],
    "patch_size": [16, 24, 8],
    "intensity": {"clip": [-1000, 1000], "mean": 40.0, "std": 200.0},
    "theta": 0.01,
    "step": 0.5,
    "train": {},
}


def small_net() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(
        torch.nn.Conv3d(1, 4, 3, padding=1),
        torch.nn.InstanceNorm3d(4),
        torch.nn.LeakyReLU(0.01),
        torch.nn.Conv3d(4, 6, 1),
        torch.nn.Softmax(dim=1),
    ).eval()


def test_export_network_follows_the_onnx_contract(tmp_path) -> None:
    net = small_net()
    path = export_network(net, META, tmp_path / "seg.onnx")
    model = onnx.load(str(path))
    assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) >= 18
    image = model.graph.input[0]
    dims = [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim]
    assert image.name == "image" and isinstance(dims[0], str) and dims[1:] == [1, 16, 24, 8]
    assert model.graph.output[0].name == "probs"
    assert json.loads({p.key: p.value for p in model.metadata_props}["eanno"]) == META
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(["probs"], {"image": np.zeros((3, 1, 16, 24, 8), np.float32)})[0]
    assert out.shape == (3, 6, 16, 24, 8)  # dynamic batch
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)
    parity = check_parity(net, path, META)
    assert parity.worst <= PARITY_TOLERANCE and parity.random <= 1e-5


def test_parity_check_catches_a_different_network(tmp_path) -> None:
    path = export_network(small_net(), META, tmp_path / "seg.onnx")
    other = small_net()
    with torch.no_grad():
        other[3].bias[3] += 2.0  # one class only: a shift of all logits would not change softmax
    assert check_parity(other, path, META).worst > PARITY_TOLERANCE


@pytest.mark.skipif(
    tensorrt_version() is not None, reason="TensorRT is installed here: the message case cannot occur"
)
def test_trt_without_tensorrt_says_where_to_build_and_exits_5(tmp_path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"x")
    result = CliRunner().invoke(
        main, ["trt", "--onnx", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "m.plan")]
    )
    assert result.exit_code == ExitCode.MISSING_DEPENDENCY == 5  # not 2: that is a usage error
    assert NO_TENSORRT in result.output and "Traceback" not in result.output
    assert (
        NO_TENSORRT
        == "TensorRT is not installed here: build the plan inside the Triton image, see docker/README.md"
    )
    assert not (tmp_path / "m.plan").exists()


@pytest.mark.skipif(tensorrt_version() is None, reason=NO_TENSORRT)
def test_trt_builds_a_plan_where_tensorrt_is_installed(tmp_path) -> None:
    path = export_network(small_net(), META, tmp_path / "seg.onnx")
    result = CliRunner().invoke(
        main, ["trt", "--onnx", str(path), "--out", str(tmp_path / "m.plan"), "--batch", "1,2,4"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.plan").stat().st_size > 0


def test_trt_batch_option_is_validated(tmp_path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"x")
    result = CliRunner().invoke(
        main, ["trt", "--onnx", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "p"), "--batch", "1,x"]
    )
    assert result.exit_code == 2 and "comma-separated integers" in result.output


def test_plan_key_changes_with_gpu_tensorrt_model_and_precision(tmp_path) -> None:
    from eanno_export.deploy import plan_key

    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"model a")
    b.write_bytes(b"model b")
    base = plan_key(a, "NVIDIA H100 80GB HBM3, 9.0", "10.5.0", "fp16")
    assert base == plan_key(
        a, "NVIDIA H100 80GB HBM3, 9.0", "10.5.0.18", "fp16"
    )  # the build number does not count
    others = {
        plan_key(b, "NVIDIA H100 80GB HBM3, 9.0", "10.5.0", "fp16"),
        plan_key(a, "NVIDIA L40S, 8.9", "10.5.0", "fp16"),
        plan_key(a, "NVIDIA H100 80GB HBM3, 9.0", "10.6.0", "fp16"),
        plan_key(a, "NVIDIA H100 80GB HBM3, 9.0", "10.5.0", "fp32"),
    }
    assert base not in others and len(others) == 4


@pytest.mark.skipif(tensorrt_version() is not None, reason="TensorRT is installed here")
def test_deploy_without_tensorrt_exits_5_with_the_message(tmp_path) -> None:
    from eanno_export.deploy import main as deploy

    (tmp_path / "repo" / "eanno_segmenter").mkdir(parents=True)
    (tmp_path / "repo" / "eanno_segmenter" / "model.onnx").write_bytes(b"x")
    result = CliRunner().invoke(
        deploy, ["build", "--repository", str(tmp_path / "repo"), "--cache", str(tmp_path / "c")]
    )
    assert result.exit_code == ExitCode.MISSING_DEPENDENCY and NO_TENSORRT in result.output


def test_export_parity_of_a_network_with_an_input_window(tmp_path) -> None:
    """The in-network soft-tissue window (a Clip in the graph) exports and matches torch."""
    from eanno_training.models import build_model, tiny_config

    torch.manual_seed(2)
    cfg = tiny_config("unet").replace(input_window=[-1.25, 1.25], patch_size=[32, 32, 32])
    net = build_model(cfg).eval()
    meta = META | {"patch_size": [32, 32, 32]}
    path = export_network(net, meta, tmp_path / "seg.onnx")
    parity = check_parity(net, path, meta)
    assert parity.worst <= PARITY_TOLERANCE, parity
