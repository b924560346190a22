"""Deploy-time TensorRT plans for the hospital server (docker/compose.yaml), without NVIDIA's pip index.

Two steps, two images of the same NGC release (24.10: TensorRT 10.5):
- `build` runs once in the plan builder (nvcr.io/nvidia/tensorrt, which has TensorRT's Python API): builds
  the plan into the plans volume, compares it with ONNX Runtime on the repository's phantom patches and
  refuses it beyond the tolerance (eanno_export.plan_check);
- `place` runs in the server image's entrypoint (TensorRT libraries, no Python API): finds the plan for its
  own TensorRT version and GPU in the volume and copies it to eanno_segmenter/1/model.plan.
A plan already in the repository is used as it is; model.onnx stays. The cache key carries the ONNX file's
hash, the GPU (name, compute capability), TensorRT's major.minor.patch and the precision. Imports no torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import click
from eanno_contracts.cli import ErrorGroup

from eanno_export.errors import ExportError, TensorRTUnavailable
from eanno_export.trt import NO_TENSORRT, build_plan, tensorrt_library_version, tensorrt_version

log = logging.getLogger(__name__)
SEGMENTER = "eanno_segmenter"
PRECISIONS = ("fp16", "fp32")


class PlanError(ExportError):
    """No usable plan: the message says what is there and what to do."""


def gpu_identity() -> str:
    """'<name>, <compute capability>' of the first visible GPU (nvidia-smi); ExportError where none is visible."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise ExportError(
            f"no GPU visible to this container (nvidia-smi failed: {e}); run it with --gpus"
        ) from e
    return out.strip().splitlines()[0].strip()


def short_version(version: str) -> str:
    """major.minor.patch: what a serialized engine must match (the build number does not matter)."""
    return ".".join(version.split(".")[:3])


def plan_key(onnx_path: Path, gpu: str, trt_version: str, precision: str) -> str:
    """The cache key: what a TensorRT engine is valid for."""
    h = hashlib.sha256(onnx_path.read_bytes())
    h.update(f"|{gpu}|{short_version(trt_version)}|{precision}".encode())
    return h.hexdigest()[:24]


def segmenter_paths(repository: Path) -> tuple[Path, Path]:
    """(model.onnx, 1/model.plan) of the repository's segmenter."""
    return repository / SEGMENTER / "model.onnx", repository / SEGMENTER / "1" / "model.plan"


def cached_plans(cache: Path) -> list[dict]:
    """What the plans volume holds (the sidecar of every plan), for error messages."""
    found = []
    for meta in sorted(cache.glob(f"{SEGMENTER}-*.json")):
        try:
            found.append(json.loads(meta.read_text()))
        except (OSError, ValueError):
            continue
    return found


def build(
    repository: Path, cache: Path, precision: str, gpu: str | None = None, plan_runner: object = None
) -> tuple[Path | None, str]:
    """Build, check and cache the plan for this GPU; returns (cached plan or None, what happened)."""
    from eanno_export.plan_check import check_plan, load_check_patches  # noqa: PLC0415 - onnxruntime

    onnx_path, in_repo = segmenter_paths(repository)
    if in_repo.is_file():
        return None, f"{in_repo} is in the repository: used as it is, nothing to build"
    if not onnx_path.is_file():
        raise PlanError(
            f"{onnx_path} is missing: write the repository with eanno-export repository --flavor tensorrt"
        )
    version = tensorrt_version()
    if version is None:
        raise TensorRTUnavailable(NO_TENSORRT)
    gpu = gpu or gpu_identity()
    key = plan_key(onnx_path, gpu, version, precision)
    plan, meta = cache / f"{SEGMENTER}-{key}.plan", cache / f"{SEGMENTER}-{key}.json"
    if plan.is_file() and meta.is_file():
        return plan, f"reused {plan} (TensorRT {version}, {gpu}, {precision})"
    cache.mkdir(parents=True, exist_ok=True)
    log.info(
        "building the TensorRT plan for %s, TensorRT %s, %s (first start on this GPU; minutes)",
        gpu,
        version,
        precision,
    )
    candidate = cache / f".{plan.name}.candidate"
    build_plan(
        onnx_path, candidate, fp16=precision == "fp16", batches=(1, 4, 8), timing_cache=cache / "timing.cache"
    )
    result = check_plan(
        onnx_path,
        candidate,
        load_check_patches(onnx_path.parent),
        precision,
        plan_runner=plan_runner,  # type: ignore[arg-type]
    )
    log.info("%s", result.summary())
    if not result.ok:
        candidate.unlink(missing_ok=True)
        hint = " (try EANNO_PLAN_PRECISION=fp32)" if precision == "fp16" else ""
        raise PlanError(f"the {precision} plan was refused: {result.summary()}{hint}")
    os.replace(candidate, plan)
    meta.write_text(
        json.dumps(
            {
                "plan": plan.name,
                "tensorrt": short_version(version),
                "gpu": gpu,
                "precision": precision,
                "check": result.as_dict(),
            },
            indent=1,
        )
    )
    return plan, f"built {plan}; {result.summary()}"


def place(
    repository: Path, cache: Path, precision: str, gpu: str | None = None, trt_version: str | None = None
) -> str:
    """Copy the plan for this server's TensorRT and GPU from the cache into the repository; what happened."""
    onnx_path, target = segmenter_paths(repository)
    if target.is_file():
        return f"{target} is in the repository: used as it is"
    if not onnx_path.is_file():
        raise PlanError(
            f"neither {target} nor {onnx_path} exists: is {repository} a tensorrt-flavor repository?"
        )
    version = trt_version or tensorrt_version() or tensorrt_library_version()
    if version is None:
        raise PlanError("cannot tell this server's TensorRT version (no libnvinfer found, TRT_VERSION unset)")
    gpu = gpu or gpu_identity()
    plan = cache / f"{SEGMENTER}-{plan_key(onnx_path, gpu, version, precision)}.plan"
    if not plan.is_file():
        have = (
            "; ".join(
                f"{m.get('precision')} for TensorRT {m.get('tensorrt')} on {m.get('gpu')}"
                for m in cached_plans(cache)
            )
            or "none"
        )
        raise PlanError(
            f"no {precision} plan for TensorRT {short_version(version)} on {gpu} in {cache} "
            f"(plans there: {have}); run the plan builder first: docker compose run --rm eanno-plan"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(plan, tmp)
    os.replace(tmp, target)
    return f"placed {plan} as {target} (TensorRT {short_version(version)}, {gpu}, {precision})"


OPTIONS = [
    click.option("--repository", type=click.Path(file_okay=False, path_type=Path), required=True),
    click.option(
        "--cache",
        type=click.Path(file_okay=False, path_type=Path),
        required=True,
        help="The plans volume (plans, their check figures, the timing cache).",
    ),
    click.option(
        "--precision",
        type=click.Choice(PRECISIONS),
        envvar="EANNO_PLAN_PRECISION",
        default="fp16",
        show_default=True,
        help="fp32 when the fp16 plan is refused or for a bit-closer answer.",
    ),
]


def _options(f):  # type: ignore[no-untyped-def]
    for option in reversed(OPTIONS):
        f = option(f)
    return f


@click.group(cls=ErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Build (plan builder image) or place (server image) the TensorRT plan for this GPU."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")


@main.command("build")
@_options
def build_cmd(repository: Path, cache: Path, precision: str) -> None:
    """Build the plan once per GPU, TensorRT version and precision; check it against ONNX Runtime."""
    _plan, what = build(repository, cache, precision)
    click.echo(what)


@main.command("place")
@_options
def place_cmd(repository: Path, cache: Path, precision: str) -> None:
    """Put the cached plan for this server's TensorRT and GPU into the repository (no TensorRT Python needed)."""
    click.echo(place(repository, cache, precision))


if __name__ == "__main__":
    main()
