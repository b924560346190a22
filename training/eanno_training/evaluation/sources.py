"""Shared command-line inputs of eanno-eval and eanno-calibrate: where cases and probabilities come from."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..seeds import HELD_OUT_SEED

if TYPE_CHECKING:  # the readers (nibabel), FROC (eanno_postproc) and matching load where options are used,
    # so that --help of eanno-eval and eanno-calibrate does not import them
    from eanno_postproc import Rules

    from .cases import Case
    from .matching import HitRule


@dataclass
class Source:
    """The cases chosen on the command line (lazily read) and how to describe them."""

    cases: Callable[[], Iterator[Case]]
    description: str
    count: int


def case_options_with_seed(
    default_seed: int, what: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--gt-dir DIR | --phantoms N [--seed S] [--phantom-spacing MM], phantoms seeded by default_seed."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @click.option(
            "--gt-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Labelled cases in the AbdomenAtlas layout: CASE/ct.nii.gz + CASE/segmentations/ (or CASE/combined_labels.nii.gz).",
        )
        @click.option("--phantoms", type=click.IntRange(1), help="Instead of --gt-dir: generate N phantoms.")
        @click.option(
            "--seed",
            type=int,
            default=default_seed,
            show_default=True,
            help=f"Seed of the generated phantoms ({what}).",
        )
        @click.option(
            "--phantom-spacing",
            type=float,
            help="Generate phantoms at this isotropic spacing (mm) instead of the drawn one (e.g. 2 for quick runs).",
        )
        @functools.wraps(f)
        def wrapper(
            *args: Any,
            gt_dir: Path | None,
            phantoms: int | None,
            seed: int,
            phantom_spacing: float | None,
            **kw: Any,
        ) -> Any:
            return f(*args, source=make_source(gt_dir, phantoms, seed, phantom_spacing), **kw)

        return wrapper

    return decorate


case_options = case_options_with_seed(HELD_OUT_SEED, "the held-out default, as eanno-train evaluate's")


def make_source(gt_dir: Path | None, phantoms: int | None, seed: int, spacing: float | None) -> Source:
    """A Source from the options; exactly one of gt_dir / phantoms."""
    from .cases import CaseError, atlas_case_dirs, phantom_cases, read_atlas_case

    if (gt_dir is None) == (phantoms is None):
        raise click.UsageError("give exactly one of --gt-dir DIR or --phantoms N")
    if gt_dir is not None:
        try:
            dirs = atlas_case_dirs(gt_dir)
        except CaseError as e:
            raise click.ClickException(str(e)) from e
        return Source(lambda: (read_atlas_case(d) for d in dirs), f"{gt_dir} ({len(dirs)} cases)", len(dirs))
    assert phantoms is not None  # exactly one of the two, checked above
    kwargs: dict[str, Any] = {}
    if spacing is not None:
        kwargs["spacing"] = (spacing,) * 3
    desc = f"{phantoms} phantoms, seed {seed}" + (f", {spacing:g} mm" if spacing else "")
    return Source(lambda: phantom_cases(phantoms, seed, **kwargs), desc, phantoms)


@dataclass(frozen=True)
class Matching:
    """How predictions are scored: the hit rule, the thetas swept, the rules, the target and its stage."""

    rule: HitRule
    thetas: tuple[float, ...]
    rules: Rules
    target: float
    select_on: str


def matching_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--hit-rule, --class-aware, --target, --select-on, --thetas, --rules, handed over as `matching`."""

    @click.option(
        "--hit-rule",
        default="overlap",
        show_default=True,
        help="When a prediction finds a lesion: 'overlap' (any shared voxel) or 'iou:T' (IoU >= T).",
    )
    @click.option("--class-aware", is_flag=True, help="A hit must also have the right lesion class.")
    @click.option(
        "--target",
        type=click.FloatRange(0, 1, min_open=True),
        default=0.99,
        show_default=True,
        help="Target pooled lesion sensitivity for theta*.",
    )
    @click.option(
        "--select-on",
        type=click.Choice(["after", "before"]),
        default="after",
        show_default=True,
        help="Pick theta* on the sensitivity after (or before) post-processing.",
    )
    @click.option(
        "--thetas", help="Comma-separated thresholds to sweep (default: 40 log-spaced from 1e-4 to 0.9)."
    )
    @click.option(
        "--rules",
        "rules_path",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="Post-processing rules file (default: the packaged rules).",
    )
    @functools.wraps(f)
    def wrapper(
        *args: Any,
        hit_rule: str,
        class_aware: bool,
        thetas: str | None,
        rules_path: Path | None,
        target: float,
        select_on: str,
        **kw: Any,
    ) -> Any:
        from eanno_postproc import RulesError, load_rules

        from .froc import DEFAULT_THETAS
        from .matching import HitRule

        try:
            rule = HitRule.parse(hit_rule, class_aware)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--hit-rule") from e
        try:
            grid = (
                DEFAULT_THETAS if thetas is None else tuple(float(t) for t in thetas.split(",") if t.strip())
            )
        except ValueError as e:
            raise click.BadParameter(f"not a list of numbers: {thetas!r}", param_hint="--thetas") from e
        if not grid or any(not 0 < t <= 1 for t in grid):
            raise click.BadParameter(f"thresholds must be in (0, 1], got {thetas!r}", param_hint="--thetas")
        try:
            rules = load_rules(rules_path)
        except RulesError as e:
            raise click.ClickException(str(e)) from e
        return f(*args, matching=Matching(rule, grid, rules, target, select_on), **kw)

    return wrapper


def probs_from_dir(pred_dir: Path) -> Callable[[Case], Any]:
    """Case -> probabilities read from pred_dir/<case>.npy|.npz (canonical grid)."""
    from .cases import find_prediction, read_probs

    return lambda case: read_probs(find_prediction(pred_dir, case.name, (".npz", ".npy")), case)
