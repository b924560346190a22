"""eanno-eval: FROC and patient-level evaluation of lesion predictions against ground truth."""

from __future__ import annotations

import functools
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from eanno_contracts.cli import ErrorGroup, add_version
from eanno_contracts.errors import MissingDependency

from .card import card_section, write_card_section
from .sources import Matching, Source, case_options, matching_options, probs_from_dir

# nibabel, the checkpoint (torch) and eanno_postproc load where a command runs (fast --help)
if TYPE_CHECKING:
    from .run import Evaluation

log = logging.getLogger(__name__)


@click.group(cls=ErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log progress.")
def main(verbose: bool) -> None:
    """Evaluate lesion predictions: FROC (sensitivity vs FP components per scan, before and after
    post-processing, theta* for a target sensitivity) and patient-level figures (the paper's Table 1).

    Predictions come from probability files (--pred-dir with --probs), label maps (--pred-dir), or a
    checkpoint run here with the sliding-window predictor (--checkpoint, or --shipped)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@dataclass(frozen=True)
class Prediction:
    """Where the predictions come from: --pred-dir [--probs] | --checkpoint | --shipped (exactly one)."""

    pred_dir: Path | None
    probs: bool
    checkpoint: Path | None
    shipped: bool
    device: str

    def probs_fn(self) -> Any:
        """The probability source, or None for label maps."""
        chosen = [self.pred_dir is not None, self.checkpoint is not None, self.shipped]
        if sum(chosen) != 1:
            raise click.UsageError("give exactly one of --pred-dir, --checkpoint or --shipped")
        if self.pred_dir is not None:
            return probs_from_dir(self.pred_dir) if self.probs else None
        from ..checkpoint import CheckpointError

        try:
            from .run import predictor_probs

            return predictor_probs(self.checkpoint, device=self.device)
        except (CheckpointError, RuntimeError) as e:  # RuntimeError: torch on a device it does not have
            raise click.ClickException(str(e)) from e


def prediction_options(f: Any) -> Any:
    """--pred-dir [--probs] | --checkpoint | --shipped, handed over as `prediction`."""

    @click.option(
        "--pred-dir",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        help="Predictions named after the case folders.",
    )
    @click.option(
        "--probs",
        is_flag=True,
        help="--pred-dir holds probabilities <case>.npz ('probs') or <case>.npy, "
        "shape (6, *canonical grid); otherwise label maps <case>.nii.gz.",
    )
    @click.option(
        "--checkpoint",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="Run this checkpoint (eanno-checkpoint/1) on the cases.",
    )
    @click.option("--shipped", is_flag=True, help="Run the shipped phantom model on the cases.")
    @click.option(
        "--device", default="cpu", show_default=True, help="Where the predictor runs: cpu, cuda, cuda:1 ..."
    )
    @functools.wraps(f)
    def wrapper(
        *args: Any,
        pred_dir: Path | None,
        probs: bool,
        checkpoint: Path | None,
        shipped: bool,
        device: str,
        **kw: Any,
    ) -> Any:
        return f(*args, prediction=Prediction(pred_dir, probs, checkpoint, shipped, device), **kw)

    return wrapper


def _label_evaluation(source: Source, pred_dir: Path, m: Matching, n_boot: int, seed: int) -> Evaluation:
    """Label maps: one FROC point; before = after (no candidates to put back)."""
    from .cases import find_prediction, read_label_prediction
    from .froc import froc as pool_froc
    from .froc import labels_case
    from .patient import patient_stats
    from .run import Evaluation

    sweeps = []
    for case in source.cases():
        pred = read_label_prediction(find_prediction(pred_dir, case.name, (".nii.gz", ".nii")), case)
        sweeps.append(labels_case(case.name, pred, case.truth, m.rule, m.rules.connectivity))
    result = pool_froc(sweeps)
    pat = patient_stats([s.after[0] for s in sweeps], n_boot=n_boot, seed=seed)
    star = {"theta": None, "reached": None, "note": "label maps: no threshold to sweep"}
    return Evaluation(result, star, {"before": pat, "after": pat}, None, m.rule, sweeps)


def _run(
    source: Source,
    prediction: Prediction,
    m: Matching,
    theta: float | None,
    n_boot: int = 2000,
    seed: int = 0,
) -> Evaluation:
    from .cases import CaseError
    from .run import evaluate_cases

    fn = prediction.probs_fn()
    try:
        if fn is None:
            assert prediction.pred_dir is not None
            return _label_evaluation(source, prediction.pred_dir, m, n_boot, seed)
        with click.progressbar(length=source.count, label="cases", file=sys.stderr) as bar:
            return evaluate_cases(
                source.cases(),
                fn,
                m.thetas,
                rule=m.rule,
                rules=m.rules,
                target=m.target,
                select_on=m.select_on,
                theta=theta,
                n_boot=n_boot,
                seed=seed,
                progress=lambda _: bar.update(1),
            )
    except (CaseError, ValueError) as e:
        raise click.ClickException(str(e)) from e


def _summary(ev: Evaluation, source: Source) -> dict[str, Any]:
    star = ev.star
    out: dict[str, Any] = {
        "cases": source.description,
        "hit_rule": ev.rule.describe(),
        "theta_star": star.get("theta"),
        "target": star.get("target"),
        "reached": star.get("reached"),
    }
    if ev.theta is not None or star.get("note"):
        i = ev.froc.thetas.index(ev.theta) if ev.theta is not None else 0
        for stage in ("before", "after"):
            p = ev.froc.points[stage][i]["pooled"]
            out[stage] = {"sensitivity": p["sensitivity"], "fp_per_scan": p["fp_per_scan"]}
    else:
        out["best_sensitivity"] = star.get("best_sensitivity")
    return out


@main.command()
@case_options
@prediction_options
@matching_options
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for froc.json and froc.png.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def froc(
    source: Source,
    prediction: Prediction,
    matching: Matching,
    out: Path,
    as_json: bool,
) -> None:
    """FROC per class and pooled, before and after post-processing, and theta*.

    \b
    Examples:
      eanno-eval froc --phantoms 20 --shipped --out eval/
      eanno-eval froc --gt-dir cases/ --pred-dir probs/ --probs --hit-rule iou:0.1 --out eval/
    """
    from .run import write_json

    ev = _run(source, prediction, matching, None)
    write_json(out / "froc.json", ev.to_json())
    _plot(ev, out)
    summary = _summary(ev, source) | {"json": str(out / "froc.json"), "plot": str(out / "froc.png")}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(_describe(summary))


def _plot(ev: Evaluation, out: Path) -> None:
    """froc.png, or a clear message when matplotlib (the [all] extra) is not installed."""
    try:
        from .plot import plot_froc

        plot_froc(ev.froc, out / "froc.png", star=ev.star if ev.star.get("reached") else None)
    except ImportError as e:
        raise MissingDependency(
            f"the FROC plot needs matplotlib ({e}); install it with: pip install 'eanno-training[all]'"
        ) from e


def _describe(s: dict[str, Any]) -> str:
    lines = [f"cases: {s['cases']}; hit rule: {s['hit_rule']}"]
    if s.get("theta_star") is not None:
        lines.append(f"theta* = {s['theta_star']:.4g} (target sensitivity {s['target']:g}, reached)")
    elif s.get("reached") is False:
        lines.append(f"target sensitivity {s['target']:g} NOT reached; best {s.get('best_sensitivity')}")
    for stage in ("before", "after"):
        if stage in s:
            p = s[stage]
            lines.append(
                f"{stage:>6} post-processing: sensitivity {p['sensitivity']}, FP per scan {p['fp_per_scan']}"
            )
    return "\n".join(lines)


@main.command()
@case_options
@prediction_options
@matching_options
@click.option(
    "--theta",
    type=click.FloatRange(0, 1, min_open=True),
    help="Operating threshold (default: theta* of the sweep).",
)
@click.option(
    "--bootstrap",
    "n_boot",
    type=click.IntRange(100),
    default=2000,
    show_default=True,
    help="Bootstrap resamples for the F1 interval.",
)
@click.option("--boot-seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for table.md and patient.json.",
)
@click.option(
    "--model-card",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the results into this markdown file between eanno-eval markers.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the patient-level figures as one JSON object.")
def patient(
    source: Source,
    prediction: Prediction,
    matching: Matching,
    theta: float | None,
    n_boot: int,
    boot_seed: int,
    out: Path,
    model_card: Path | None,
    as_json: bool,
) -> None:
    """Patient-level sensitivity, specificity, PPV, F1 with 95% CIs (Table 1 layout).

    A scan is positive when any lesion component survives. Also writes the FROC (froc.json, froc.png).

    \b
    Example:
      eanno-eval patient --phantoms 20 --shipped --out eval/ --model-card MODEL_CARD.md
    """
    from .run import write_atomic, write_json

    ev = _run(source, prediction, matching, theta, n_boot, boot_seed)
    if not ev.patient:
        raise click.ClickException("no lesion sensitivity could be computed (no ground-truth lesions?)")
    note = ""
    if theta is None and not ev.star.get("reached", True):
        note = f" (target sensitivity {matching.target:g} not reached; at the most sensitive theta)"
        click.echo(
            f"warning: target sensitivity {matching.target:g} not reached by any swept theta; "
            f"reporting at theta {ev.theta} (sensitivity {ev.star.get('best_sensitivity')})",
            err=True,
        )
    table = ev.table(
        title=f"Patient-level results, {source.description}, hit rule {matching.rule.describe()}{note}"
    )
    write_atomic(out / "table.md", table)
    write_json(out / "patient.json", ev.to_json())
    _plot(ev, out)
    if model_card is not None:
        write_card_section(model_card, card_section(ev, source))
    if as_json:
        click.echo(json.dumps(_summary(ev, source) | {"patient": ev.patient, "table": str(out / "table.md")}))
    else:
        click.echo(table)


add_version(main, "eanno-training")  # --version on the command and every subcommand


if __name__ == "__main__":  # pragma: no cover
    main()
