"""Deploy-time plans: placing a cached plan in the server, using a plan in the repository as it is, and the
plan builder's check against ONNX Runtime (accepted within the tolerance, refused beyond it).

TensorRT is not installable here (shared/ENVIRONMENT.md): where `build` needs it, TensorRT's two calls (the
engine build, and running the engine) are stood in for by ONNX Runtime on the same ONNX file; the cache,
the key, the check on the repository's phantom patches, the refusal and the files left are the real code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from eanno_export import deploy
from eanno_export.errors import ExportError
from eanno_export.onnx_export import export_network
from eanno_export.plan_check import CHECK_PATCHES, TOLERANCE, compare, onnxruntime_runner
from eanno_export.trt import tensorrt_library_version

from .test_export import META, small_net

GPU = "NVIDIA L40S, 8.9"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A tensorrt-flavor segmenter folder: model.onnx and phantom-like check patches, no plan."""
    seg = tmp_path / "repo" / deploy.SEGMENTER
    seg.mkdir(parents=True)
    export_network(small_net(), META, seg / "model.onnx")
    rng = np.random.default_rng(0)
    np.save(seg / CHECK_PATCHES, rng.normal(0, 1, (5, 1, *META["patch_size"])).astype(np.float32))
    return tmp_path / "repo"


def fake_tensorrt(monkeypatch: pytest.MonkeyPatch, version: str = "10.5.0.18") -> None:
    """TensorRT 'present': build_plan copies the ONNX file (ONNX Runtime then runs the 'plan')."""
    monkeypatch.setattr(deploy, "tensorrt_version", lambda: version)
    monkeypatch.setattr(
        deploy, "build_plan", lambda onnx, out, **kw: Path(out).write_bytes(Path(onnx).read_bytes())
    )


def test_a_plan_in_the_repository_is_used_as_it_is_without_model_onnx(tmp_path: Path) -> None:
    plan = tmp_path / "repo" / deploy.SEGMENTER / "1" / "model.plan"
    plan.parent.mkdir(parents=True)
    plan.write_bytes(b"engine built elsewhere")
    result = CliRunner().invoke(
        deploy.main, ["place", "--repository", str(tmp_path / "repo"), "--cache", str(tmp_path / "plans")]
    )
    assert result.exit_code == 0, result.output
    assert "used as it is" in result.output and plan.read_bytes() == b"engine built elsewhere"
    _, what = deploy.build(tmp_path / "repo", tmp_path / "plans", "fp16", gpu=GPU)
    assert "nothing to build" in what


def test_build_checks_caches_and_place_puts_the_plan_for_this_gpu(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tensorrt(monkeypatch)
    cache = tmp_path / "plans"
    onnx = repo / deploy.SEGMENTER / "model.onnx"
    plan, what = deploy.build(repo, cache, "fp16", gpu=GPU, plan_runner=onnxruntime_runner(onnx))
    assert plan is not None and plan.is_file() and "accepted" in what and "argmax agreement 100.000%" in what
    sidecar = json.loads(plan.with_suffix(".json").read_text())
    assert sidecar["tensorrt"] == "10.5.0" and sidecar["gpu"] == GPU and sidecar["check"]["ok"]
    assert deploy.build(repo, cache, "fp16", gpu=GPU)[1].startswith("reused")
    # The server: its TensorRT libraries say 10.5.0 (no build number), the same GPU -> the same key.
    what = deploy.place(repo, cache, "fp16", gpu=GPU, trt_version="10.5.0")
    target = repo / deploy.SEGMENTER / "1" / "model.plan"
    assert "placed" in what and target.read_bytes() == plan.read_bytes()
    assert onnx.is_file(), "model.onnx must stay"


def test_place_names_what_the_cache_holds_when_nothing_fits(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tensorrt(monkeypatch)
    cache = tmp_path / "plans"
    deploy.build(
        repo, cache, "fp16", gpu=GPU, plan_runner=onnxruntime_runner(repo / deploy.SEGMENTER / "model.onnx")
    )
    with pytest.raises(
        deploy.PlanError,
        match=r"no fp16 plan for TensorRT 10\.6\.0 on NVIDIA H100.*fp16 for "
        r"TensorRT 10\.5\.0 on NVIDIA L40S, 8\.9.*eanno-plan",
    ):
        deploy.place(repo, cache, "fp16", gpu="NVIDIA H100, 9.0", trt_version="10.6.0")
    assert not (repo / deploy.SEGMENTER / "1" / "model.plan").exists()


def test_a_plan_beyond_the_tolerance_is_refused_and_not_cached(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tensorrt(monkeypatch)
    reference = onnxruntime_runner(repo / deploy.SEGMENTER / "model.onnx")

    def drifting(x: np.ndarray) -> np.ndarray:  # an engine whose probabilities are off by 0.05 in one class
        p = reference(x).copy()
        p[:, 1] += 0.05
        return p

    cache = tmp_path / "plans"
    with pytest.raises(
        deploy.PlanError,
        match=r"fp16 plan was refused: .*max \|dp\| 5\.00e-02 \(tolerance 2e-02\)"
        r".*EANNO_PLAN_PRECISION=fp32",
    ):
        deploy.build(repo, cache, "fp16", gpu=GPU, plan_runner=drifting)
    assert not list(cache.glob("*.plan")) and not list(cache.glob(".*candidate"))


def test_compare_counts_argmax_disagreement_and_non_finite_output() -> None:
    rng = np.random.default_rng(1)
    ref = rng.dirichlet(np.ones(6), size=(2, 4, 4, 4)).transpose(0, 4, 1, 2, 3).astype(np.float32)
    assert compare(ref, ref, TOLERANCE["fp32"]).ok
    swapped = ref[:, ::-1].copy()
    check = compare(ref, swapped, 1.0)
    assert not check.ok and check.argmax_agreement < 0.5
    nan = ref.copy()
    nan[0, 0, 0, 0, 0] = np.nan
    assert not compare(ref, nan, 1.0).ok
    with pytest.raises(ExportError, match="shape"):
        compare(ref, ref[:1], 1.0)


def test_server_side_tensorrt_version_from_its_libraries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRT_VERSION", raising=False)
    for name in ("libnvinfer.so.10", "libnvinfer.so.10.5.0", "libnvinfer_plugin.so.10.5.0"):
        (tmp_path / name).write_bytes(b"")
    assert tensorrt_library_version([str(tmp_path)]) == "10.5.0"
    assert tensorrt_library_version([str(tmp_path / "absent")]) is None
    monkeypatch.setenv("TRT_VERSION", "10.5.0.18")
    assert tensorrt_library_version([]) == "10.5.0.18"
