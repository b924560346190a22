"""The post-processing step of the ensemble: request overrides -> eanno_postproc.refine -> outputs + report."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from eanno_postproc import Rules, load_rules, refine
from eanno_postproc.flags import scan_flags
from eanno_postproc.report import summarise
from eanno_postproc.rules import default_rules_text

from eanno_serving.requests import RequestError, parse_affine, parse_rules_json, parse_threshold


def site_rules(model_dir: Path, params: Mapping[str, str]) -> tuple[Rules, dict[str, str]]:
    """The rules the repository carries (rules_file parameter) or the packaged defaults, and what they are."""
    name = params.get("rules_file")
    if not name:
        text = default_rules_text()
        return load_rules(None), {
            "source": "packaged defaults",
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
        }
    path = model_dir / name
    rules = load_rules(path)  # RulesError names the file and the bad key: the model then fails to load
    return rules, {
        "source": params.get("rules_source", name),
        "sha256": hashlib.sha256(path.read_text(encoding="utf-8").encode()).hexdigest(),
    }


def rules_with_overrides(base: Rules, overrides: dict[str, Any] | None) -> Rules:
    """The rules file merged with a request's JSON overrides; invalid overrides are a RequestError."""
    if not overrides:
        return base
    try:
        return Rules.from_dict(overrides, base=base, source="request rules")
    except (ValueError, TypeError) as e:
        raise RequestError(f"invalid rules override: {e}") from e


@dataclasses.dataclass(frozen=True)
class Annotation:
    """What the ensemble returns for one volume."""

    labels: np.ndarray
    removed: np.ndarray
    report: dict[str, Any]

    def report_bytes(self) -> np.ndarray:
        """The report as the BYTES [1] output tensor."""
        return np.array([json.dumps(self.report).encode()], dtype=np.object_)


def request_rules(base: Rules | None, rules: np.ndarray | None) -> Rules:
    """The rules a request runs under: the rules file (or `base`) with the request's JSON overrides."""
    return rules_with_overrides(base if base is not None else load_rules(None), parse_rules_json(rules))


def annotate(
    volume: np.ndarray,
    spacing: np.ndarray,
    probs: np.ndarray | None,
    model: Mapping[str, Any],
    *,
    affine: np.ndarray | None = None,
    threshold: np.ndarray | None = None,
    rules: np.ndarray | None = None,
    base_rules: Rules | None = None,
    box: np.ndarray | None = None,
    outside: Mapping[str, Any] | None = None,
    rules_info: Mapping[str, str] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Annotation:
    """Refine the window's probabilities into labels, removed candidates and the report (+ model info and
    the whole-scan "flags": computed here from the model's META when the whole volume is given, else the
    window's, which saw the whole field of view on the model grid).

    Without `box`, `volume` and `probs` cover the whole volume. With `box` (2, 3: start, stop), both cover
    that box only (region first, eanno_serving.region): labels and removed come back for the box, refine
    runs on it alone, its records are moved to whole-volume voxel coordinates, and `outside` (the window's
    region report: {"shape": whole volume, "lesions": records of the candidates outside the box, ...})
    completes the report.
    The report's `rules` also names the rules in force: source and sha256 of the repository's rules file
    (`rules_info`, from site_rules) and the request's overrides.
    """
    answer = _annotate(
        volume,
        spacing,
        probs,
        model,
        affine=affine,
        threshold=threshold,
        rules=rules,
        base_rules=base_rules,
        box=box,
        outside=outside,
        meta=meta,
    )
    named = {
        **(rules_info or {"source": "caller's rules" if base_rules else "packaged defaults"}),
        "overrides": parse_rules_json(rules) or None,
    }
    answer.report["rules"] = {**answer.report.get("rules", {}), **named}
    return answer


def _annotate(
    volume: np.ndarray,
    spacing: np.ndarray,
    probs: np.ndarray | None,
    model: Mapping[str, Any],
    *,
    affine: np.ndarray | None,
    threshold: np.ndarray | None,
    rules: np.ndarray | None,
    base_rules: Rules | None,
    box: np.ndarray | None,
    outside: Mapping[str, Any] | None,
    meta: Mapping[str, Any] | None,
) -> Annotation:
    theta = parse_threshold(threshold, float(model["theta"]))
    the_rules = request_rules(base_rules, rules)
    the_affine = parse_affine(affine, spacing)
    if box is None:
        if probs is None or probs.shape[1:] != volume.shape:
            shape = None if probs is None else list(probs.shape)
            raise RequestError(f"probs {shape} do not match volume {list(volume.shape)}")
        res = refine(volume, probs=probs, theta=theta, affine=the_affine, rules=the_rules)
        report = dict(res.report)
        report["model"] = dict(model)
        report["flags"] = scan_flags(volume, res.labels, [float(s) for s in spacing], the_rules, meta)
        return Annotation(
            res.labels.astype(np.uint8, copy=False), res.removed.astype(np.uint8, copy=False), report
        )
    if outside is None or "shape" not in outside:
        raise RequestError("a box needs the window's region report with the whole volume's shape")
    result = _annotate_box(
        volume,
        tuple(int(n) for n in outside["shape"]),
        probs,
        np.asarray(box, dtype=np.int64).reshape(2, 3),
        model,
        theta,
        the_rules,
        the_affine,
        list(outside.get("lesions", [])),
    )
    result.report["flags"] = [str(f) for f in outside.get("flags", [])]  # the box alone cannot tell
    return result


def _annotate_box(
    ct: np.ndarray,
    shape: tuple[int, ...],
    probs: np.ndarray | None,
    box: np.ndarray,
    model: Mapping[str, Any],
    theta: float,
    rules: Rules,
    affine: np.ndarray,
    outside: list[dict[str, Any]],
) -> Annotation:
    """Refine the box's CT; whole-volume report (box records moved, outside records added, ids renumbered)."""
    start, stop = (tuple(int(v) for v in row) for row in box)
    if len(shape) != 3 or any(not 0 <= a <= b <= n for a, b, n in zip(start, stop, shape, strict=True)):
        raise RequestError(f"box {box.tolist()} is not inside the volume {list(shape)}")
    empty = any(b == a for a, b in zip(start, stop, strict=True))
    size = tuple(b - a for a, b in zip(start, stop, strict=True))
    if not empty and (probs is None or probs.shape[1:] != size or ct.shape != size):
        got = None if probs is None else list(probs.shape)
        raise RequestError(f"probs {got} or CT {list(ct.shape)} do not match the box {box.tolist()}")
    if empty:  # no voxel can be pancreas: only outside candidates, nothing to refine at full resolution
        labels = removed = np.zeros((0, 0, 0), np.uint8)
        parenchyma = duct = 0
        lesions: list[dict[str, Any]] = []
        base = refine(
            np.zeros((1, 1, 1), np.int16), labels=np.zeros((1, 1, 1), np.uint8), affine=affine, rules=rules
        ).report
        base["input"], base["theta"] = "probs", theta
        base["rules"]["theta"] = theta
    else:
        shift = np.eye(4)
        shift[:3, 3] = start
        res = refine(ct, probs=probs, theta=theta, affine=affine @ shift, rules=rules)
        labels, removed = res.labels.astype(np.uint8, copy=False), res.removed.astype(np.uint8, copy=False)
        base = res.report
        parenchyma, duct = base["summary"]["pancreas_voxels"], base["summary"]["duct_voxels"]
        lesions = [_moved(rec, start) for rec in base["lesions"]]
    lesions += outside
    for i, rec in enumerate(lesions, start=1):
        rec["id"] = i
    report = dict(base)
    report.update(
        shape=[int(n) for n in shape],
        lesions=lesions,
        summary=summarise(lesions, parenchyma, duct),
        model=dict(model),
        region={"start": list(start), "stop": list(stop), "outside_candidates": len(outside)},
    )
    return Annotation(labels, removed, report)


def _moved(rec: dict[str, Any], start: tuple[int, ...]) -> dict[str, Any]:
    """A box record in whole-volume voxel coordinates (its mm figures are already right: shifted affine)."""
    rec = dict(rec)
    rec["centroid_voxel"] = [c + s for c, s in zip(rec["centroid_voxel"], start, strict=True)]
    rec["bbox_voxel"] = {
        k: [v + s for v, s in zip(rec["bbox_voxel"][k], start, strict=True)] for k in ("min", "max")
    }
    return rec
