"""Ranking cases by borderline candidates: hand-built reports with known scores, and a real refine report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from eanno_client.cli import main
from eanno_client.rank import RankSettings, rank_cases, score_report

RULES = {
    "volume_ratio_limit": {"pdac": 133, "cyst": 83, "pnet": 46},
    "hu_window": {"pdac": [-206, 185], "cyst": [-33, 222], "pnet": [-16, 270]},
}


def lesion(i: int, cls: str, decision: str, prob: float | None, hu: float, ratio: float) -> dict:
    return {
        "id": i,
        "class": cls,
        "decision": decision,
        "prob_max": prob,
        "hu_mean": hu,
        "volume_ratio_percent": ratio,
    }


REPORTS = {
    "sure": {
        "theta": 0.003,
        "rules": RULES,
        "lesions": [lesion(1, "pancreatic_pdac", "kept", 0.95, 40.0, 5.0)],
    },
    "border": {
        "theta": 0.003,
        "rules": RULES,
        "lesions": [
            lesion(1, "pancreatic_pdac", "kept", 0.004, 40.0, 5.0),  # prob_max a factor 4/3 above theta
            lesion(2, "pancreatic_pdac", "relabelled_volume_ratio", 0.9, 40.0, 140.0),
        ],
    },  # 7/133 above its limit
    "hu": {
        "theta": 0.003,
        "rules": RULES,
        "lesions": [lesion(1, "pancreatic_cyst", "kept", 0.9, 215.0, 10.0)],
    },
    "empty": {"theta": 0.003, "rules": RULES, "lesions": []},
}
# closeness = 1 - distance / scale: decades for the probability (scale 1), fraction of limit or window (0.15)
BORDER = (1 - math.log10(0.004 / 0.003)) + (1 - (7 / 133) / 0.15)
HU = 1 - (7 / 255) / 0.15


def test_scores_are_the_closeness_of_each_call() -> None:
    assert score_report(REPORTS["border"])["score"] == pytest.approx(BORDER, abs=1e-4)
    assert score_report(REPORTS["hu"])["score"] == pytest.approx(HU, abs=1e-4)
    assert score_report(REPORTS["sure"]) == {
        "score": 0.0,
        "borderline": 0,
        "candidates": 1,
        "kept": 1,
        "reasons": [],
        "flags": [],
    }


def test_ranking_order_and_reasons() -> None:
    ranking = rank_cases(REPORTS)
    assert [r["case"] for r in ranking] == ["border", "hu", "sure", "empty"]
    border = ranking[0]
    assert border["borderline"] == 2 and [r["id"] for r in border["reasons"]] == [1, 2]
    assert border["reasons"][0]["why"] == "prob_max 0.004 vs theta 0.003"
    assert border["reasons"][1]["why"] == "volume ratio 140% vs limit 133%"
    assert ranking[1]["reasons"][0]["why"] == "mean HU 215.0 vs window [-33, 222]"


def test_flagged_cases_come_first_whatever_their_score() -> None:
    flagged = {**REPORTS["empty"], "flags": ["no pancreas in view (0.0 mL found)"]}
    ranking = rank_cases({**REPORTS, "flagged": flagged})
    assert [r["case"] for r in ranking][:2] == ["flagged", "border"]
    assert ranking[0]["flags"] == flagged["flags"]
    from eanno_client.rank import explain

    assert "FLAGGED: no pancreas in view" in explain(ranking[0])


def test_wider_margin_finds_more() -> None:
    far = {
        "theta": 0.003,
        "rules": RULES,
        "lesions": [lesion(1, "pancreatic_pdac", "kept", 0.9, 40.0, 100.0)],
    }
    assert score_report(far)["borderline"] == 0  # 33/133 = 0.25 of the limit away
    assert score_report(far, RankSettings(margin=0.3))["borderline"] == 1


def test_a_real_refine_report_is_read() -> None:
    """The report eanno_postproc writes carries the fields the ranking reads (prob_max, theta, rules)."""
    from eanno_postproc import refine

    ct = np.full((24, 24, 24), 40, np.int16)
    probs = np.zeros((6, 24, 24, 24), np.float32)
    probs[0] = 1.0
    probs[0, 4:20, 4:20, 4:20], probs[1, 4:20, 4:20, 4:20] = 0.0, 1.0
    probs[1, 10:13, 10:13, 10:13], probs[3, 10:13, 10:13, 10:13] = 0.996, 0.004  # a faint PDAC candidate
    report = json.loads(json.dumps(refine(ct, probs=probs, affine=np.eye(4)).report))
    scored = score_report(report)
    assert scored["candidates"] == 1 and scored["kept"] == 1
    assert scored["reasons"][0]["why"].startswith("prob_max 0.004 vs theta 0.003")
    assert scored["score"] == pytest.approx(1 - math.log10(0.004 / 0.003), abs=1e-3)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    for case, report in REPORTS.items():
        (tmp_path / case).mkdir()
        (tmp_path / case / "report.json").write_text(json.dumps(report))
    return tmp_path


def test_rank_command_skips_reviewed_cases(out: Path) -> None:
    assert (
        CliRunner()
        .invoke(main, ["status", "set", str(out / "hu"), "--approved", "--reviewer", "a"])
        .exit_code
        == 0
    )
    res = CliRunner().invoke(main, ["rank", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert [r["case"] for r in json.loads(res.output)["ranking"]] == ["border", "sure", "empty"]
    saved = json.loads((out / "ranking.json").read_text())
    assert [r["rank"] for r in saved["ranking"]] == [1, 2, 3]
    res = CliRunner().invoke(main, ["rank", str(out), "--all"])
    lines = res.output.splitlines()
    assert lines[1].startswith("  1. border: score 1.52, 2 borderline of 2 candidate(s), 1 kept - #1")
    assert lines[2].startswith("  2. hu: ")
    assert (
        lines[-1] == "  4. empty: score 0.00, 0 borderline of 0 candidate(s), 0 kept - no lesion candidates"
    )


def test_rank_command_damaged_report(out: Path) -> None:
    (out / "sure" / "report.json").write_text("{")
    res = CliRunner().invoke(main, ["rank", str(out)])
    assert res.exit_code == 1 and "sure/report.json: not a readable report" in res.output
