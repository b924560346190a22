"""`eanno-export`: checkpoint -> ONNX, ONNX -> TensorRT plan, checkpoint -> Triton model repository."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click
from eanno_contracts.cli import ErrorGroup, add_version

from eanno_export.trt import build_plan

FLAVOR_HELP = (
    "tensorrt: the NGC image on a GPU (plan built at deploy time unless TensorRT is here); "
    "onnxruntime: the NGC image without TensorRT; python-onnxruntime: the PyPI wheel (local server, CI)."
)


@click.group(cls=ErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Turn a trained checkpoint into what Triton serves.

    \b
    eanno-export onnx --out model.onnx                    # the shipped model, parity-checked
    eanno-export trt --onnx model.onnx --out model.plan --fp16   # where TensorRT is installed
    eanno-export repository --flavor python-onnxruntime --out repo/
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s")


@main.command()
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="An eanno-checkpoint/1 file [the shipped small phantom model].",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The .onnx to write."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def onnx(checkpoint: Path | None, out: Path, as_json: bool) -> None:
    """Export to ONNX (opset 18, dynamic batch, static patch) and check parity with torch (<= 1e-3)."""
    from eanno_export.onnx_export import PARITY_TOLERANCE, export_checkpoint  # torch: imported only here

    path, parity, meta = export_checkpoint(checkpoint, out)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "onnx": str(path),
                    "parity_max_abs": {"random": parity.random, "phantom": parity.phantom},
                    "tolerance": PARITY_TOLERANCE,
                    "theta": meta.get("theta"),
                }
            )
        )
    else:
        click.echo(f"wrote {path}")
        click.echo(
            f"parity max |torch - onnxruntime|: random {parity.random:.2e}, phantom {parity.phantom:.2e} "
            f"(tolerance {PARITY_TOLERANCE:.0e})"
        )


def _batches(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        batches = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers like 1,4,8, got {value!r}") from None
    if not batches or min(batches) < 1 or len(batches) > 3:
        raise click.BadParameter(f"expected 1 to 3 positive batch sizes (min,opt,max), got {value!r}")
    return batches


@main.command()
@click.option(
    "--onnx", "onnx_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The .plan to write."
)
@click.option("--fp16", is_flag=True, help="Allow fp16 kernels (the GPU default in production).")
@click.option(
    "--batch",
    "batches",
    default="1,4,8",
    show_default=True,
    callback=_batches,
    help="Optimisation profile over the batch axis: min,opt,max.",
)
@click.option(
    "--timing-cache",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Read and update this timing cache (rebuilds get faster).",
)
def trt(onnx_path: Path, out: Path, fp16: bool, batches: tuple[int, ...], timing_cache: Path | None) -> None:
    """Build a TensorRT plan on this GPU (exit 5 where TensorRT is not installed)."""
    path = build_plan(onnx_path, out, fp16=fp16, batches=batches, timing_cache=timing_cache)
    click.echo(f"wrote {path}")


@main.command()
@click.option(
    "--flavor",
    type=click.Choice(["tensorrt", "onnxruntime", "python-onnxruntime"]),
    required=True,
    help=FLAVOR_HELP,
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="An eanno-checkpoint/1 file [the shipped small phantom model].",
)
@click.option(
    "--plan",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="tensorrt flavor: an already built plan to use.",
)
@click.option("--fp16", is_flag=True, help="tensorrt flavor, when building the plan here: allow fp16.")
@click.option("--reuse", is_flag=True, help="Keep an existing repository written from the same checkpoint.")
@click.option(
    "--rules",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A site's post-processing rules (YAML or JSON, the keys it changes): the server loads them "
    "and every report names them [the packaged defaults].",
)
@click.option(
    "--window-instances",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Instances (processes) of the sliding-window model.",
)
@click.option(
    "--admission-slots",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Full-size-equivalent requests (512 x 512 x 300 each) the window works on at once; more are "
    "refused 'server busy' (UNAVAILABLE) and the client retries them with back-off.",
)
@click.option(
    "--admission-reserve-mb",
    type=click.IntRange(min=0),
    default=1024,
    show_default=True,
    help="Start no request while the machine (or its cgroup) has less memory available than this.",
)
def repository(
    flavor: str,
    out: Path,
    checkpoint: Path | None,
    plan: Path | None,
    fp16: bool,
    reuse: bool,
    rules: Path | None,
    window_instances: int,
    admission_slots: int,
    admission_reserve_mb: int,
) -> None:
    """Write a complete Triton model repository (ensemble, window, segmenter, postproc) for one place."""
    from eanno_export.repository import build_repository  # torch: imported only here

    capacity = {
        "window_instances": window_instances,
        "admission_slots": admission_slots,
        "admission_reserve_mb": admission_reserve_mb,
    }
    path, parity, how = build_repository(
        flavor,  # type: ignore[arg-type]
        out,
        checkpoint,
        plan=plan,
        fp16=fp16,
        reuse=reuse,
        rules=rules,
        capacity=capacity,
    )
    click.echo(f"repository {path} ({flavor}; segmenter: {how}; rules: {rules or 'packaged defaults'})")
    if parity is not None:
        click.echo(
            f"parity max |torch - onnxruntime|: random {parity.random:.2e}, phantom {parity.phantom:.2e}"
        )


add_version(main, "eanno-export")  # --version on the command and every subcommand


if __name__ == "__main__":
    main()
