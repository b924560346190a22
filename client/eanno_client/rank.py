"""Order cases by how much a radiologist's look is worth, from the server's lesion reports alone.

A candidate is worth a look when the pipeline's decision on it was close: its highest lesion probability
near the operating threshold theta, or a figure a post-processing rule compares (volume ratio, mean HU)
near that rule's limit, whichever way the rule went. A case's score adds its candidates' closeness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from eanno_contracts.labels import CLASS_NAMES, LESION_KEYS

# The lesion classes' keys in the rules' per-class tables (eanno_postproc rules.yaml).
RULE_KEYS = {CLASS_NAMES[c]: key for c, key in LESION_KEYS.items()}  # report class name -> rules file key


@dataclass(frozen=True)
class RankSettings:
    """How near a limit counts as borderline."""

    margin: float = 0.15  # a rule figure within this fraction of its limit (HU: of the window width)
    decades: float = 1.0  # prob_max within this many powers of ten above theta

    def __post_init__(self) -> None:
        if self.margin <= 0 or self.decades <= 0:
            raise ValueError(f"margin and decades must be > 0, got {self.margin}, {self.decades}")


def _closeness(distance: float, scale: float) -> float:
    """1 at the limit, falling linearly to 0 at `scale` away."""
    return max(0.0, 1.0 - distance / scale)


def probability_closeness(prob_max: float | None, theta: float, settings: RankSettings) -> float:
    """How near the candidate's highest probability is to theta, in decades (1 at theta)."""
    if prob_max is None or theta <= 0 or prob_max <= 0:
        return 0.0
    return _closeness(abs(math.log10(prob_max / theta)), settings.decades)


def rule_closeness(
    lesion: dict[str, Any], rules: dict[str, Any], settings: RankSettings
) -> list[tuple[float, str]]:
    """(closeness, why) for each rule limit the candidate's own figures lie near."""
    key = RULE_KEYS.get(str(lesion.get("class")))
    if key is None:
        return []
    out: list[tuple[float, str]] = []
    ratio, limit = lesion.get("volume_ratio_percent"), rules.get("volume_ratio_limit", {}).get(key)
    if isinstance(ratio, int | float) and isinstance(limit, int | float) and limit > 0:
        near = _closeness(abs(ratio - limit) / limit, settings.margin)
        if near > 0:
            out.append((near, f"volume ratio {ratio:.3g}% vs limit {limit:g}%"))
    hu, window = lesion.get("hu_mean"), rules.get("hu_window", {}).get(key)
    if (
        isinstance(hu, int | float)
        and isinstance(window, list | tuple)
        and len(window) == 2
        and window[1] > window[0]
    ):
        lo, hi = window
        near = _closeness(min(abs(hu - lo), abs(hu - hi)) / (hi - lo), settings.margin)
        if near > 0:
            out.append((near, f"mean HU {hu:.1f} vs window [{lo:g}, {hi:g}]"))
    return out


def score_report(report: dict[str, Any], settings: RankSettings | None = None) -> dict[str, Any]:
    """A case's score (sum over candidates of their closest call), borderline count and the reasons."""
    settings = settings or RankSettings()
    theta = report.get("theta", report.get("model", {}).get("theta"))
    rules = report.get("rules", {})
    score, reasons, borderline = 0.0, [], 0
    lesions = report.get("lesions", [])
    for x in lesions:
        calls = rule_closeness(x, rules, settings)
        if isinstance(theta, int | float):
            p = probability_closeness(x.get("prob_max"), float(theta), settings)
            if p > 0:
                calls.append((p, f"prob_max {x['prob_max']:.3g} vs theta {theta:g}"))
        if not calls:
            continue
        best = max(c for c, _ in calls)
        score += best
        borderline += 1
        reasons.append(
            {
                "id": x.get("id"),
                "class": x.get("class"),
                "decision": x.get("decision"),
                "closeness": round(best, 3),
                "why": "; ".join(w for _, w in sorted(calls, reverse=True)),
            }
        )
    reasons.sort(key=lambda r: -r["closeness"])
    kept = sum(1 for x in lesions if x.get("decision") == "kept")
    return {
        "score": round(score, 4),
        "borderline": borderline,
        "candidates": len(lesions),
        "kept": kept,
        "reasons": reasons,
        "flags": [str(f) for f in report.get("flags") or []],
    }


def rank_cases(
    reports: dict[str, dict[str, Any]], settings: RankSettings | None = None
) -> list[dict[str, Any]]:
    """Flagged cases first (the report says not to trust them), then the cases most worth a look (ties: more
    candidates first, then by name), each with its reasons."""
    scored = [{"case": case, **score_report(r, settings)} for case, r in reports.items()]
    scored.sort(key=lambda s: (not s["flags"], -s["score"], -s["candidates"], s["case"]))
    for i, s in enumerate(scored, start=1):
        s["rank"] = i
    return scored


def explain(s: dict[str, Any]) -> str:
    """One line saying why a case ranks where it does."""
    head = (
        f"{s['rank']:>3}. {s['case']}: score {s['score']:.2f}, {s['borderline']} borderline of "
        f"{s['candidates']} candidate(s), {s['kept']} kept"
    )
    if s.get("flags"):
        head += " - FLAGGED: " + "; ".join(s["flags"])
    if not s["reasons"]:
        return head + (" - no close call" if s["candidates"] else " - no lesion candidates")
    top = s["reasons"][:3]
    more = f" (+{len(s['reasons']) - 3} more)" if len(s["reasons"]) > 3 else ""
    return (
        head + " - " + "; ".join(f"#{r['id']} {r['class']} {r['decision']}: {r['why']}" for r in top) + more
    )
