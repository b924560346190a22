"""A built TensorRT plan is compared with ONNX Runtime on phantom patches before anyone is served by it.

The export stage writes `eanno_segmenter/check_patches.npy` (model-input patches cut from phantoms by the
serving window) beside model.onnx; the plan builder runs both on them. Refused when the largest probability
difference passes the tolerance or the per-voxel argmax agrees on too few voxels. Numpy and ONNX Runtime
only (the plan builder image has no torch); TensorRT is reached through polygraphy, imported only there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eanno_export.errors import ExportError

CHECK_PATCHES = "check_patches.npy"
# Softmax probabilities, fp16 plan against fp32 ONNX Runtime: fp16 kernels (10-bit mantissa) move logits by
# ~1e-3 relative through a deep net; 0.02 leaves room for that and still refuses a wrong engine (a broken
# plan is off by O(0.1-1)). fp32 plans differ only by kernel choice and summation order.
TOLERANCE = {"fp16": 2e-2, "fp32": 1e-3}
MIN_ARGMAX_AGREEMENT = 0.999
Runner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PlanCheck:
    """How a plan's probabilities compare with ONNX Runtime's on the check patches."""

    patches: int
    max_abs: float
    mean_abs: float
    argmax_agreement: float
    tolerance: float
    min_agreement: float

    @property
    def ok(self) -> bool:
        """Within the tolerance and the argmax agreement."""
        return self.max_abs <= self.tolerance and self.argmax_agreement >= self.min_agreement

    def summary(self) -> str:
        """One line for the log."""
        verdict = "accepted" if self.ok else "REFUSED"
        return (
            f"plan vs ONNX Runtime on {self.patches} phantom patches: max |dp| {self.max_abs:.2e} "
            f"(tolerance {self.tolerance:.0e}), mean {self.mean_abs:.2e}, argmax agreement "
            f"{100 * self.argmax_agreement:.3f}% (needs {100 * self.min_agreement:.1f}%): {verdict}"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures, with the verdict."""
        return {**asdict(self), "ok": self.ok}


def compare(
    reference: np.ndarray,
    candidate: np.ndarray,
    tolerance: float,
    min_agreement: float = MIN_ARGMAX_AGREEMENT,
) -> PlanCheck:
    """Compare two [N, C, ...] probability arrays (reference = ONNX Runtime)."""
    if reference.shape != candidate.shape:
        raise ExportError(
            f"plan output shape {candidate.shape} differs from ONNX Runtime's {reference.shape}"
        )
    ref, cand = reference.astype(np.float32), candidate.astype(np.float32)
    diff = np.abs(ref - cand)
    agree = float((ref.argmax(1) == cand.argmax(1)).mean())
    max_abs = float(diff.max()) if np.isfinite(cand).all() else float("inf")
    return PlanCheck(len(ref), max_abs, float(diff.mean()), agree, tolerance, min_agreement)


def run_batched(run: Runner, patches: np.ndarray, batch: int) -> np.ndarray:
    """Run `run` over patches in batches of at most `batch` and concatenate."""
    return np.concatenate([run(patches[i : i + batch]) for i in range(0, len(patches), batch)])


def onnxruntime_runner(onnx_path: str | os.PathLike[str]) -> Runner:
    """The reference: the ONNX file on ONNX Runtime's CPU provider."""
    import onnxruntime as ort  # noqa: PLC0415

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return lambda x: session.run(["probs"], {"image": x.astype(np.float32)})[0]


def tensorrt_runner(plan_path: str | os.PathLike[str]) -> tuple[Runner, Callable[[], None]]:
    """The plan through polygraphy's TrtRunner (plan builder image only); returns (run, close)."""
    from polygraphy.backend.common import BytesFromPath  # noqa: PLC0415
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner  # noqa: PLC0415

    runner = TrtRunner(EngineFromBytes(BytesFromPath(str(plan_path))))
    runner.activate()
    return (
        lambda x: np.asarray(runner.infer({"image": np.ascontiguousarray(x, np.float32)})["probs"]),
        runner.deactivate,
    )


def check_plan(
    onnx_path: Path,
    plan_path: Path,
    patches: np.ndarray,
    precision: str,
    batch: int = 4,
    plan_runner: Runner | None = None,
) -> PlanCheck:
    """Run ONNX Runtime and the plan (or `plan_runner`) on the patches and compare at the precision's tolerance."""
    reference = run_batched(onnxruntime_runner(onnx_path), patches, batch)
    close: Callable[[], None] = lambda: None  # noqa: E731
    if plan_runner is None:
        plan_runner, close = tensorrt_runner(plan_path)
    try:
        candidate = run_batched(plan_runner, patches, batch)
    finally:
        close()
    return compare(reference, candidate, TOLERANCE[precision])


def load_check_patches(segmenter_dir: Path) -> np.ndarray:
    """The export stage's phantom patches, or a clear error naming the file."""
    path = segmenter_dir / CHECK_PATCHES
    if not path.is_file():
        raise ExportError(
            f"{path} is missing: write the repository with eanno-export repository --flavor "
            "tensorrt (it cuts the check patches from phantoms)"
        )
    return np.load(path)
