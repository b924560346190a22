"""eanno-calibrate: the operating threshold (into the checkpoint) and the post-processing limits (a rules
file) from a site's own labelled cases."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from eanno_contracts.cli import ErrorGroup, add_version

from ..evaluation.sources import Matching, Source, case_options, case_options_with_seed, matching_options
from ..seeds import CALIBRATION_SEED

if TYPE_CHECKING:  # torch (the checkpoint), scipy and eanno_postproc load where a command runs (fast --help)
    pass

log = logging.getLogger(__name__)


@click.group(cls=ErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log progress.")
def main(verbose: bool) -> None:
    """Calibrate EfficientAnno on your own labelled cases.

    \b
    threshold: run the model, sweep theta, write theta* (the largest theta reaching the target lesion
               sensitivity) into the checkpoint's META, which the served model and the server report.
    rules:     learn the post-processing limits (lesion-to-pancreas volume ratio, HU windows) from
               labelled cases and write a rules file with its provenance."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@main.command()
@case_options_with_seed(CALIBRATION_SEED, "calibration phantoms; never a held-out test seed")
@matching_options
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Checkpoint to calibrate (default: the shipped model).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Calibrated checkpoint to write (may equal --checkpoint to update it in place).",
)
@click.option(
    "--device", default="cpu", show_default=True, help="Where the predictor runs: cpu, cuda, cuda:1 ..."
)
@click.option(
    "--report", type=click.Path(dir_okay=False, path_type=Path), help="Also write the sweep (JSON) here."
)
@click.option(
    "--or-best",
    is_flag=True,
    help="When no theta reaches --target, write the most sensitive one (recorded as not reached) instead of failing.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def threshold(
    source: Source,
    matching: Matching,
    checkpoint: Path | None,
    out: Path,
    device: str,
    report: Path | None,
    or_best: bool,
    as_json: bool,
) -> None:
    """Pick theta* on a calibration set and write it into the checkpoint META ("theta").

    Exits 1 without writing when no swept theta reaches the target sensitivity (unless --or-best).

    \b
    Example:
      eanno-calibrate threshold --gt-dir calib/ --checkpoint model.pt --out model_calibrated.pt
    """
    from ..checkpoint import CheckpointError
    from ..evaluation.cases import CaseError
    from ..evaluation.run import predictor_probs, write_json
    from .threshold import ThresholdError, chosen_theta, sweep_thetas, write_theta

    try:
        probs_fn = predictor_probs(checkpoint, device=device)
        with click.progressbar(length=source.count, label="cases", file=sys.stderr) as bar:
            ev = sweep_thetas(
                source.cases(),
                probs_fn,
                matching.thetas,
                target=matching.target,
                rules=matching.rules,
                rule=matching.rule,
                select_on=matching.select_on,
                progress=lambda _: bar.update(1),
            )
    except (CheckpointError, CaseError, ValueError, RuntimeError) as e:
        raise click.ClickException(str(e)) from e
    if report is not None:
        write_json(report, ev.to_json())
    try:
        provenance = {**chosen_theta(ev, matching.rules, or_best=or_best), "cases": source.description}
        write_theta(checkpoint, out, provenance["theta"], provenance)
    except ThresholdError as e:  # said with the cases it was chosen on; CheckpointError passes to ErrorGroup
        raise ThresholdError(f"{source.description}: {e}") from e
    if as_json:
        click.echo(json.dumps({"checkpoint": str(out), **provenance}))
    else:
        click.echo(
            f"theta* = {provenance['theta']:.4g}: sensitivity {provenance['sensitivity']:.3f} ({matching.select_on} post-processing), "
            f"FP per scan {provenance['fp_per_scan']['before']:.2f} before / {provenance['fp_per_scan']['after']:.2f} after; "
            f"written to {out}"
        )


def _percentiles(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError as e:
        raise click.BadParameter(
            f"expected LO,HI such as 0.5,99.5, got {text!r}", param_hint="--percentiles"
        ) from e
    if not 0 <= lo < hi <= 100:
        raise click.BadParameter(f"need 0 <= LO < HI <= 100, got {text!r}", param_hint="--percentiles")
    return lo, hi


@main.command()
@case_options
@click.option(
    "--percentiles",
    default="0.5,99.5",
    show_default=True,
    help="LO,HI: the HU window spans these percentiles of lesion mean HU; the volume ratio limit is HI.",
)
@click.option(
    "--ratio-factor",
    type=click.FloatRange(0, min_open=True),
    default=1.2,
    show_default=True,
    help="Multiply the HI percentile of the volume ratio by this (headroom for unseen lesions).",
)
@click.option(
    "--ratio-method",
    type=click.Choice(["lognormal", "empirical"]),
    default="lognormal",
    show_default=True,
    help="Upper ratio percentile from a log-normal fit (extrapolates the heavy tail) or the sample.",
)
@click.option(
    "--hu-margin",
    type=click.FloatRange(0),
    default=10.0,
    show_default=True,
    help="Widen each HU window by this many HU per side.",
)
@click.option(
    "--min-lesions",
    type=click.IntRange(1),
    default=5,
    show_default=True,
    help="A class with fewer lesions keeps the base limits.",
)
@click.option(
    "--base",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Rules file to start from (default: the packaged rules).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Rules file (YAML) to write.",
)
@click.option("--json", "as_json", is_flag=True, help="Print limits and provenance as one JSON object.")
def rules(
    source: Source,
    percentiles: str,
    ratio_method: str,
    ratio_factor: float,
    hu_margin: float,
    min_lesions: int,
    base: Path | None,
    out: Path,
    as_json: bool,
) -> None:
    """Learn volume-ratio limits and HU windows per lesion class, and the organ limits behind the report's
    flags (pancreas volume, pieces, position against the spine), from labelled cases.

    \b
    Example:
      eanno-calibrate rules --gt-dir site_cases/ --out site_rules.yaml
      eanno-client annotate ct/ --rules site_rules.yaml ...   (or eanno-export --rules)
    """
    from eanno_postproc import RulesError, load_rules

    from ..evaluation.cases import CaseError
    from ..evaluation.run import write_atomic
    from .rules import calibrate_organ, calibrate_rules, lesion_stats, organ_stat, rules_yaml, stats_table

    pct = _percentiles(percentiles)
    try:
        base_rules = load_rules(base)
        stats, organs = [], []
        for case in source.cases():  # one read of each case for both sets of limits
            stats += lesion_stats(case, hu_clip=base_rules.hu_clip, connectivity=base_rules.connectivity)
            organs.append(organ_stat(case, base_rules.organ.piece_min_ml))
        overrides, provenance = calibrate_rules(
            stats,
            percentiles=pct,
            ratio_factor=ratio_factor,
            hu_margin=hu_margin,
            min_lesions=min_lesions,
            base=base_rules,
            ratio_method=ratio_method,
        )
        organ_overrides, provenance["organ"] = calibrate_organ(
            [o for o in organs if o is not None], percentiles=pct, base=base_rules
        )
        overrides.update(organ_overrides)
    except (CaseError, RulesError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    text = rules_yaml(overrides, provenance, source=source.description + (f"; base {base}" if base else ""))
    write_atomic(out, text)
    load_rules(out)  # what was written must load
    if as_json:
        click.echo(
            json.dumps(
                {"rules": str(out), **overrides, "provenance": provenance, "lesions": stats_table(stats)}
            )
        )
    else:
        click.echo(text)


add_version(main, "eanno-training")  # --version on the command and every subcommand


if __name__ == "__main__":  # pragma: no cover
    main()
