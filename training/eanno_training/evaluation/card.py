"""The model card's figures section, written by `eanno-eval patient --model-card` between its markers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .run import Evaluation
    from .sources import Source

CARD_BEGIN, CARD_END = "<!-- eanno-eval:begin -->", "<!-- eanno-eval:end -->"


def card_section(ev: Evaluation, source: Source) -> str:
    """Markdown for the model card: theta*, the FROC at a few thetas, the patient table."""
    lines = [
        CARD_BEGIN,
        "## Figures on held-out data (written by `eanno-eval patient`)",
        "",
        f"Cases: {source.description}. Hit rule: {ev.rule.describe()}. "
        f"theta* (target {ev.star.get('target')}, on the {ev.star.get('stage')} stage): "
        f"{'not reached' if ev.star.get('theta') is None else format(ev.star['theta'], '.4g')}.",
        "",
        "| theta | sensitivity before | FP/scan before | sensitivity after | FP/scan after |",
        "|---|---|---|---|---|",
    ]
    for i, t in enumerate(ev.froc.thetas):
        if len(ev.froc.thetas) > 16 and i % 4 and t != ev.theta:  # long sweeps: every 4th row
            continue
        b, a = ev.froc.points["before"][i]["pooled"], ev.froc.points["after"][i]["pooled"]
        mark = " **(operating point)**" if t == ev.theta else ""
        lines.append(
            f"| {t:.4g}{mark} | {_f(b['sensitivity'])} | {_f(b['fp_per_scan'])} | {_f(a['sensitivity'])} | {_f(a['fp_per_scan'])} |"
        )
    lines += _rule_shares(ev)
    lines += ["", ev.table(), CARD_END]
    return "\n".join(lines) + "\n"


RULE_NAMES = {
    "removed_outside_pancreas": "outside the pancreas (removed)",
    "relabelled_volume_ratio": "volume ratio",
    "relabelled_duct": "touching the duct",
    "relabelled_contrast": "contrast",
}


def _rule_shares(ev: Evaluation) -> list[str]:
    """At the operating point: false regions per scan before and after, and which rule took each away."""
    if ev.theta is None or ev.theta not in ev.froc.thetas:
        return []
    i = ev.froc.thetas.index(ev.theta)
    b, a = ev.froc.points["before"][i], ev.froc.points["after"][i]
    decisions = b.get("false_region_decisions") or {}
    gone = sum(v for k, v in decisions.items() if k != "kept")
    lines = [
        "",
        f"False regions at the operating point (theta {ev.theta:.4g}): {_f(b['pooled']['fp_per_scan'])} per scan "
        f"before post-processing, {_f(a['pooled']['fp_per_scan'])} after; of the {gone} the rules took away:",
        "",
        "| rule | false regions | share |",
        "|---|---|---|",
    ]
    for key, name in RULE_NAMES.items():
        n = decisions.get(key, 0)
        lines.append(f"| {name} | {n} | {_f(n / gone) if gone else 'n/a'} |")
    return lines


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def write_card_section(path: Path, section: str) -> None:
    """Replace the text between the eanno-eval markers (or append it) and write atomically."""
    from .run import write_atomic

    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    pattern = re.compile(re.escape(CARD_BEGIN) + ".*?" + re.escape(CARD_END) + "\n?", re.S)
    text = (
        pattern.sub(lambda _: section, text)
        if pattern.search(text)
        else text.rstrip("\n") + ("\n\n" if text else "") + section
    )
    write_atomic(path, text)
