"""Every config.pbtxt of every flavor parses as Triton's ModelConfig and says what the contract says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eanno_serving.repository import (
    ENSEMBLE,
    FLAVORS,
    POSTPROC,
    SEGMENTER,
    WINDOW,
    ServingSpec,
    model_configs,
    write_repository,
)
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from .conftest import TINY_META

DTYPE = model_config_pb2.DataType


def parse(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def io(config, which: str) -> dict[str, tuple[str, list[int], bool]]:
    return {
        t.name: (DTYPE.Name(t.data_type), list(t.dims), getattr(t, "optional", False))
        for t in getattr(config, which)
    }


@pytest.mark.parametrize("flavor", FLAVORS)
def test_written_configs_parse_and_follow_the_contract(flavor, tmp_path) -> None:
    model_file = tmp_path / ("model.plan" if flavor == "tensorrt" else "model.onnx")
    model_file.write_bytes(b"stand-in segmenter bytes")
    repo = write_repository(ServingSpec(TINY_META), flavor, tmp_path / "repo", model_file)
    configs = {p.parent.name: parse(p) for p in repo.glob("*/config.pbtxt")}
    assert set(configs) == {ENSEMBLE, WINDOW, SEGMENTER, POSTPROC}
    for name, config in configs.items():
        assert config.name == name
    ens = configs[ENSEMBLE]
    assert ens.platform == "ensemble" and ens.max_batch_size == 0
    assert io(ens, "input") == {
        "volume": ("TYPE_INT16", [-1, -1, -1], False),
        "spacing": ("TYPE_FP32", [3], False),
        "affine": ("TYPE_FP32", [4, 4], True),
        "threshold": ("TYPE_FP32", [1], True),
        "rules": ("TYPE_STRING", [1], True),
    }
    assert io(ens, "output") == {
        "labels_z": ("TYPE_STRING", [1], False),
        "removed_z": ("TYPE_STRING", [1], False),
        "report": ("TYPE_STRING", [1], False),
        "box": ("TYPE_INT64", [2, 3], False),
        "removed_outside": ("TYPE_INT32", [-1, 7], False),
    }
    assert [s.model_name for s in ens.ensemble_scheduling.step] == [WINDOW, POSTPROC]
    # every ensemble tensor consumed by a step is produced by the ensemble input or an earlier step
    known = set(io(ens, "input"))
    for step in ens.ensemble_scheduling.step:
        assert set(step.input_map.values()) <= known
        assert set(step.input_map) <= set(io(configs[step.model_name], "input"))
        assert set(step.output_map) <= set(io(configs[step.model_name], "output"))
        known |= set(step.output_map.values())
    assert set(io(ens, "output")) <= known
    seg = configs[SEGMENTER]
    window_batch, max_batch = {"python-onnxruntime": (1, 2)}.get(flavor, (4, 8))
    assert seg.max_batch_size == max_batch and seg.HasField("dynamic_batching")
    assert configs[WINDOW].parameters["window_batch"].string_value == str(window_batch)
    assert io(seg, "input") == {"image": ("TYPE_FP32", [1, *TINY_META["patch_size"]], False)}
    assert io(seg, "output") == {"probs": ("TYPE_FP32", [6, *TINY_META["patch_size"]], False)}
    expected = {
        "tensorrt": ("tensorrt_plan", "", "model.plan"),
        "onnxruntime": ("onnxruntime_onnx", "", "model.onnx"),
        "python-onnxruntime": ("", "python", "model.onnx"),
    }[flavor]
    assert (seg.platform, seg.backend) == expected[:2]
    assert (repo / SEGMENTER / "1" / expected[2]).read_bytes() == b"stand-in segmenter bytes"
    assert (repo / SEGMENTER / "1" / "model.py").exists() == (flavor == "python-onnxruntime")
    for name in (WINDOW, POSTPROC):
        assert configs[name].backend == "python" and (repo / name / "1" / "model.py").is_file()
    for name in (ENSEMBLE, WINDOW, POSTPROC):  # the operating point travels with the model
        params = configs[name].parameters
        assert float(params["theta"].string_value) == TINY_META["theta"]
        assert json.loads(params["spacing"].string_value) == TINY_META["spacing"]
        assert json.loads(params["meta"].string_value) == TINY_META


def test_tensorrt_repository_from_onnx_keeps_it_for_the_deploy_time_build(tmp_path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"onnx bytes")
    repo = write_repository(ServingSpec(TINY_META), "tensorrt", tmp_path / "repo", tmp_path / "m.onnx")
    assert (repo / SEGMENTER / "model.onnx").read_bytes() == b"onnx bytes"
    assert not (repo / SEGMENTER / "1" / "model.plan").exists()


def test_configs_are_the_same_ensemble_in_every_flavor() -> None:
    """Only the segmenter and how many patches the window sends it at once differ between flavors."""
    spec = ServingSpec(TINY_META)
    texts = {}
    for flavor in FLAVORS:
        configs = model_configs(spec, flavor)
        del configs[SEGMENTER]
        assert configs[WINDOW].parameters.pop("window_batch").string_value == str(spec.batching(flavor)[0])
        texts[flavor] = {k: str(v) for k, v in configs.items()}
    assert texts["tensorrt"] == texts["onnxruntime"] == texts["python-onnxruntime"]


def test_batching_per_flavor_and_overrides() -> None:
    """GPU flavors batch (the plan's profiles 1/4/8); the CPU flavor sends single patches (issue 15)."""
    spec = ServingSpec(TINY_META)
    assert [spec.batching(f) for f in FLAVORS] == [(4, 8), (4, 8), (1, 2)]
    assert ServingSpec(TINY_META, window_batch=2, max_batch=4).batching("python-onnxruntime") == (2, 4)
    with pytest.raises(ValueError, match=r"window_batch 4 must be in \[1, max_batch=2\]"):
        ServingSpec(TINY_META, window_batch=4)


def test_bad_inputs_to_the_writer_are_named(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown flavor 'tflite'"):
        model_configs(ServingSpec(TINY_META), "tflite")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        write_repository(ServingSpec(TINY_META), "onnxruntime", tmp_path / "r", tmp_path / "nope.onnx")
    (tmp_path / "m.engine").write_bytes(b"x")
    with pytest.raises(ValueError, match="needs a .plan or .onnx"):
        write_repository(ServingSpec(TINY_META), "tensorrt", tmp_path / "r", tmp_path / "m.engine")
    with pytest.raises(ValueError, match="patch_size"):
        ServingSpec({k: v for k, v in TINY_META.items() if k != "patch_size"})
    assert not (tmp_path / "r").exists()


def test_cpu_segmenter_runs_several_single_session_instances_that_do_not_spin() -> None:
    seg = model_configs(ServingSpec(TINY_META, cpu_instances=3, ort_threads=1), "python-onnxruntime")[
        SEGMENTER
    ]
    assert [g.count for g in seg.instance_group] == [3]
    assert seg.parameters["ort_threads"].string_value == "1"
    assert seg.parameters["ort_spinning"].string_value == "0"
    with pytest.raises(ValueError, match="cpu_instances"):
        ServingSpec(TINY_META, cpu_instances=0)


def test_open_session_applies_the_thread_and_spinning_settings(tiny_onnx) -> None:
    from eanno_serving.onnx_session import open_session

    session, providers = open_session(tiny_onnx, ["CPUExecutionProvider"], threads=1, spinning=False)
    options = session.get_session_options()
    assert providers == ["CPUExecutionProvider"] and options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
