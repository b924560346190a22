"""Rules calibration: per-class distributions of lesion-to-pancreas volume ratio and mean HU from labelled
cases, limits at chosen percentiles, written as a rules file with its provenance."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from eanno_contracts.labels import LESION_KEYS, PANCREAS
from eanno_contracts.meta import DEFAULT_CLIP
from eanno_postproc import Rules
from eanno_postproc.flags import organ_measures
from scipy.stats import norm

from ..evaluation.cases import Case
from ..evaluation.matching import components

# postproc's rules file names the lesion classes by these keys
RULE_KEYS: dict[int, str] = LESION_KEYS


@dataclass(frozen=True)
class LesionStat:
    """One ground-truth lesion component: its case, class key, voxels, ratio to the parenchyma, mean HU."""

    case: str
    cls: str
    voxels: int
    ratio: float  # 100 * V(lesion) / V(pancreas parenchyma), as rule 2 measures it
    mean_hu: float  # mean clipped HU over the component, as rule 4 measures it


def lesion_stats(
    case: Case, *, hu_clip: tuple[float, float] = DEFAULT_CLIP, connectivity: int = 26
) -> list[LesionStat]:
    """Every lesion component of a labelled case with the two quantities the rules limit."""
    ids, classes = components(case.truth, connectivity)
    if not classes:
        return []
    parenchyma = int((case.truth == PANCREAS).sum())
    ct = np.clip(case.ct.astype(np.float64), *hu_clip)
    n = max(classes) + 1
    flat = ids.ravel()
    vox = np.bincount(flat, minlength=n)
    hu_sum = np.bincount(flat, weights=ct.ravel(), minlength=n)
    out = []
    for k, c in sorted(classes.items()):
        ratio = float("inf") if parenchyma == 0 else 100.0 * vox[k] / parenchyma
        out.append(LesionStat(case.name, RULE_KEYS[c], int(vox[k]), float(ratio), float(hu_sum[k] / vox[k])))
    return out


@dataclass(frozen=True)
class OrganStat:
    """One labelled case's pancreas as the flags measure it (eanno_postproc.flags.organ_measures)."""

    case: str
    volume_ml: float
    pieces: int
    anterior_of_spine_mm: float | None
    left_of_spine_mm: float | None


def organ_stat(case: Case, piece_min_ml: float) -> OrganStat | None:
    """The case's ground-truth organ measured like the flags measure a model's; None without a pancreas."""
    m = organ_measures(case.truth, case.ct, case.spacing, piece_min_ml)
    if not m["volume_ml"]:
        return None
    return OrganStat(case.name, m["volume_ml"], m["pieces"], m["anterior_of_spine_mm"], m["left_of_spine_mm"])


def calibrate_organ(
    stats: Iterable[OrganStat],
    *,
    percentiles: tuple[float, float] = (0.5, 99.5),
    volume_factor: float = 1.5,
    position_margin_mm: float = 25.0,
    min_cases: int = 5,
    base: Rules | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(organ overrides, provenance): volume = [P_lo / factor, P_hi x factor]; positions = [P_lo - margin,
    P_hi + margin] mm; max_pieces = the most pieces a labelled organ has, plus one (a stray fragment).
    Fewer than min_cases organs keep the base limits."""
    base = base or Rules.defaults()
    stats = list(stats)
    organ = base.organ.to_dict()
    info: dict[str, Any] = {"cases": len(stats)}
    if len(stats) < min_cases:
        return {}, {
            **info,
            "learned": False,
            "reason": f"fewer than {min_cases} labelled pancreases: base limits kept",
        }
    lo_p, hi_p = percentiles
    v = np.array([s.volume_ml for s in stats])
    organ["pancreas_ml"] = [
        round(float(np.percentile(v, lo_p) / volume_factor), 1),
        round(float(np.percentile(v, hi_p) * volume_factor), 1),
    ]
    organ["max_pieces"] = int(max(s.pieces for s in stats)) + 1
    for key in ("anterior_of_spine_mm", "left_of_spine_mm"):
        x = np.array([getattr(s, key) for s in stats if getattr(s, key) is not None])
        if x.size >= min_cases:
            organ[key] = [
                round(float(np.percentile(x, lo_p) - position_margin_mm)),
                round(float(np.percentile(x, hi_p) + position_margin_mm)),
            ]
    info.update(
        learned=True,
        volume_ml={"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())},
        volume_factor=volume_factor,
        position_margin_mm=position_margin_mm,
    )
    overrides = {"organ": organ}
    Rules.from_dict(overrides, base=base, source="calibrated organ limits")
    return overrides, info


def calibrate_rules(
    stats: Iterable[LesionStat],
    *,
    percentiles: tuple[float, float] = (0.5, 99.5),
    ratio_factor: float = 1.2,
    hu_margin: float = 10.0,
    min_lesions: int = 5,
    base: Rules | None = None,
    ratio_method: str = "lognormal",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(rules overrides, provenance): ratio limit = upper percentile x factor; HU window = percentiles -/+ margin.

    ratio_method "lognormal" takes the upper percentile of a log-normal fitted to the ratios; "empirical"
    the sample percentile. Ratios are heavy-tailed (volume grows with the cube of the diameter), and on
    phantoms a sample percentile of ~18 lesions fell well short of unseen lesions while the fit held.
    A class with fewer than min_lesions lesions keeps the base limits (and the provenance says so).
    """
    if ratio_method not in ("lognormal", "empirical"):
        raise ValueError(f"ratio_method must be 'lognormal' or 'empirical', got {ratio_method!r}")
    lo_p, hi_p = percentiles
    if not 0 <= lo_p < hi_p <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= lo < hi <= 100, got {percentiles}")
    if ratio_factor <= 0 or hu_margin < 0:
        raise ValueError(f"ratio_factor must be > 0 and hu_margin >= 0, got {ratio_factor}, {hu_margin}")
    base = base or Rules.defaults()
    stats = list(stats)
    ratio_limit = dict(base.volume_ratio_limit)
    hu_window = {k: list(v) for k, v in base.hu_window.items()}
    per_class: dict[str, Any] = {}
    for key in RULE_KEYS.values():
        s = [x for x in stats if x.cls == key and np.isfinite(x.ratio)]
        entry: dict[str, Any] = {"lesions": len(s), "cases": len({x.case for x in s})}
        if len(s) >= min_lesions:
            r = np.array([x.ratio for x in s])
            h = np.array([x.mean_hu for x in s])
            ratio_limit[key] = round(float(_upper(r, hi_p, ratio_method) * ratio_factor), 2)
            hu_window[key] = [
                round(float(np.percentile(h, lo_p) - hu_margin), 1),
                round(float(np.percentile(h, hi_p) + hu_margin), 1),
            ]
            entry.update(
                learned=True,
                ratio={"min": float(r.min()), "median": float(np.median(r)), "max": float(r.max())},
                mean_hu={"min": float(h.min()), "median": float(np.median(h)), "max": float(h.max())},
            )
        else:
            entry.update(learned=False, reason=f"fewer than {min_lesions} lesions: base limits kept")
        per_class[key] = entry
    overrides = {"volume_ratio_limit": ratio_limit, "hu_window": hu_window}
    Rules.from_dict(overrides, base=base, source="calibrated rules")  # validate before anyone writes it
    provenance = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cases": len({x.case for x in stats}),
        "lesions": len(stats),
        "percentiles": [lo_p, hi_p],
        "ratio_method": ratio_method,
        "ratio_factor": ratio_factor,
        "hu_margin": hu_margin,
        "min_lesions": min_lesions,
        "per_class": per_class,
    }
    return overrides, provenance


def _upper(r: np.ndarray, pct: float, method: str) -> float:
    """The pct percentile of positive ratios: sample percentile, or of a log-normal fit (ML mean, sample std)."""
    r = r[r > 0]
    if method == "empirical" or r.size < 2:
        return float(np.percentile(r, pct)) if r.size else 0.0
    logs = np.log(r)
    if pct >= 100:
        return float(r.max())
    return max(float(r.max()), float(np.exp(logs.mean() + norm.ppf(pct / 100) * logs.std(ddof=1))))


def rules_yaml(overrides: dict[str, Any], provenance: dict[str, Any], *, source: str = "") -> str:
    """The rules file text: provenance as comments (the rules loader accepts only rule keys), then the limits."""
    head = [
        "# EfficientAnno post-processing rules calibrated from labelled cases (eanno-calibrate rules).",
        f"# source: {source}" if source else "# source: (not given)",
        f"# created: {provenance['created']}; cases: {provenance['cases']}; lesions: {provenance['lesions']}",
        f"# volume_ratio_limit = P{provenance['percentiles'][1]:g} ({provenance['ratio_method']}) x {provenance['ratio_factor']:g}; "
        f"hu_window = [P{provenance['percentiles'][0]:g} - {provenance['hu_margin']:g}, P{provenance['percentiles'][1]:g} + {provenance['hu_margin']:g}] HU",
    ]
    for key, e in provenance["per_class"].items():
        head.append(
            f"# {key}: {e['lesions']} lesions in {e['cases']} cases"
            + ("" if e["learned"] else f" ({e['reason']})")
        )
    if "organ" in provenance:
        o = provenance["organ"]
        head.append(
            f"# organ (flags): {o['cases']} labelled pancreases"
            + ("" if o.get("learned") else f" ({o['reason']})")
        )
    head.append("# provenance: " + json.dumps({**provenance, "source": source}, separators=(",", ":")))
    # the body is JSON, which is also YAML: load_rules reads the file, and `grep -v '^#' FILE` is the JSON
    # object that `eanno-client annotate --rules` sends with each request
    return "\n".join(head) + "\n" + json.dumps(overrides, indent=1) + "\n"


def stats_table(stats: Sequence[LesionStat]) -> list[dict[str, Any]]:
    """JSON-able rows of the lesion statistics."""
    return [asdict(s) for s in stats]
