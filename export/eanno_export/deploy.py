"""Deploy-time plan building for the NGC image (docker/entrypoint.sh): build once per GPU and TensorRT.

The plan is cached on a volume under a key of the ONNX file's hash, the GPU model and compute capability,
and the TensorRT version; any change -> a new key -> a rebuild with the same build_plan that
`eanno-export trt` runs. Imports no torch: the image installs eanno-export without its training deps.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from pathlib import Path

import click
from eanno_contracts.cli import ErrorCommand

from eanno_export.errors import ExportError, TensorRTUnavailable
from eanno_export.trt import NO_TENSORRT, build_plan, tensorrt_version

log = logging.getLogger(__name__)
SEGMENTER = "eanno_segmenter"


def gpu_identity() -> str:
    """'<name>, <compute capability>' of the first visible GPU (nvidia-smi); ExportError where none is visible."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise ExportError(f"no GPU visible to this container (nvidia-smi failed: {e}); run it with --gpus") from e
    return out.strip().splitlines()[0].strip()


def plan_key(onnx_path: Path, gpu: str, trt_version: str, fp16: bool) -> str:
    """The cache key: what a TensorRT engine is valid for."""
    h = hashlib.sha256(onnx_path.read_bytes())
    h.update(f"|{gpu}|{trt_version}|fp16={fp16}".encode())
    return h.hexdigest()[:24]


def ensure_plan(repository: Path, cache: Path, fp16: bool = True, gpu: str | None = None) -> tuple[Path, bool]:
    """Put a plan for this GPU into repository/eanno_segmenter/1/model.plan; returns (cached plan, built now)."""
    onnx_path = repository / SEGMENTER / "model.onnx"
    if not onnx_path.is_file():
        raise ExportError(f"{onnx_path} is missing: write the repository with eanno-export repository "
                                "--flavor tensorrt")
    version = tensorrt_version()
    if version is None:
        raise TensorRTUnavailable(NO_TENSORRT)
    gpu = gpu or gpu_identity()
    cache.mkdir(parents=True, exist_ok=True)
    plan = cache / f"{SEGMENTER}-{plan_key(onnx_path, gpu, version, fp16)}.plan"
    built = not plan.is_file()
    if built:
        log.info("building the TensorRT plan for %s, TensorRT %s (first start on this GPU; minutes)", gpu, version)
        build_plan(onnx_path, plan, fp16=fp16, batches=(1, 4, 8), timing_cache=cache / "timing.cache")
    target = repository / SEGMENTER / "1" / "model.plan"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(plan, target)
    return plan, built


@click.command(cls=ErrorCommand)
@click.option("--repository", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="A persistent volume for plans and the timing cache.")
@click.option("--fp16/--fp32", default=True, show_default=True)
def main(repository: Path, cache: Path, fp16: bool) -> None:
    """Build (or reuse) the TensorRT plan for this GPU and place it in the repository."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    plan, built = ensure_plan(repository, cache, fp16)
    click.echo(f"{'built' if built else 'reused'} {plan}")


if __name__ == "__main__":
    main()
