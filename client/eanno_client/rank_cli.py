"""`eanno-client rank OUT` and `annotate --rank`: which unreviewed cases a radiologist should open first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from eanno_client.atomic import write_text_atomic
from eanno_client.rank import RankSettings, explain, rank_cases

REPORT = "report.json"  # written by `annotate` (outputs.CasePaths.report)
RANKING = "ranking.json"


def load_reports(out: Path, cases: list[str] | None = None, include_reviewed: bool = False) -> dict[str, Any]:
    """case -> report.json of each case folder in OUT (only `cases` when given), reviewed ones left out."""
    from eanno_client.review_status import read_status
    from eanno_client.volume import InputError

    if not out.is_dir():
        raise InputError(f"{out}: not a folder")
    folders = (
        [out / c for c in cases]
        if cases is not None
        else sorted(c for c in out.iterdir() if c.is_dir() and (c / REPORT).is_file())
    )
    reports: dict[str, Any] = {}
    for folder in folders:
        path = folder / REPORT
        if not path.is_file() or (not include_reviewed and read_status(folder) is not None):
            continue
        try:
            reports[folder.name] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"{path}: not a readable report ({e})") from e
    return reports


def write_ranking(out: Path, ranking: list[dict[str, Any]], settings: RankSettings) -> Path:
    """OUT/ranking.json, atomically."""
    doc = {"settings": {"margin": settings.margin, "decades": settings.decades}, "ranking": ranking}
    return write_text_atomic(out / RANKING, json.dumps(doc, indent=2) + "\n")


def ranked(
    out: Path, cases: list[str] | None, include_reviewed: bool = False, settings: RankSettings | None = None
) -> list[dict[str, Any]]:
    """Rank the cases' reports and write OUT/ranking.json; InputError (exit 1) on a report it cannot read."""
    settings = settings or RankSettings()
    ranking = rank_cases(load_reports(out, cases, include_reviewed), settings)
    write_ranking(out, ranking, settings)
    return ranking


def ranking_text(ranking: list[dict[str, Any]], out: Path) -> str:
    """The ranking as lines of text, one per case, most worth a look first."""
    lines = [f"Most worth a look first ({len(ranking)} unreviewed case(s); {out / RANKING}):"]
    return "\n".join([*lines, *(explain(s) for s in ranking)])


@click.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--margin",
    type=click.FloatRange(min=0, min_open=True),
    default=RankSettings().margin,
    show_default=True,
    help="A rule figure within this fraction of its limit is borderline.",
)
@click.option(
    "--decades",
    type=click.FloatRange(min=0, min_open=True),
    default=RankSettings().decades,
    show_default=True,
    help="prob_max within this many powers of ten of theta is borderline.",
)
@click.option("--all", "include_reviewed", is_flag=True, help="Rank reviewed cases (CASE/review.json) too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def rank(out: Path, margin: float, decades: float, include_reviewed: bool, as_json: bool) -> None:
    """Order the annotated, unreviewed cases in OUT by how much a look is worth, and say why.

    Reads each OUT/CASE/report.json (no server): a case scores for every candidate whose highest lesion
    probability is near the operating threshold or whose volume ratio or mean HU is near a post-processing
    limit, kept or not. Also written to OUT/ranking.json. `annotate --rank` does this after a batch.
    """
    ranking = ranked(out, None, include_reviewed, RankSettings(margin=margin, decades=decades))
    click.echo(json.dumps({"ranking": ranking}, indent=2) if as_json else ranking_text(ranking, out))
