"""The post-processing step of the ensemble: request overrides -> eanno_postproc.refine -> outputs + report."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from eanno_postproc import Rules, load_rules, refine
from eanno_postproc.flags import scan_flags

from eanno_serving.requests import RequestError, parse_affine, parse_rules_json, parse_threshold


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


def annotate(volume: np.ndarray, spacing: np.ndarray, probs: np.ndarray, model: Mapping[str, Any], *,
             affine: np.ndarray | None = None, threshold: np.ndarray | None = None,
             rules: np.ndarray | None = None, base_rules: Rules | None = None,
             meta: Mapping[str, Any] | None = None) -> Annotation:
    """Refine the window's probabilities into labels, removed candidates and the report (+ model info and
    the whole-scan "flags", from the model's META and the refined labels)."""
    if probs.shape[1:] != volume.shape:
        raise RequestError(f"probs {list(probs.shape)} do not match volume {list(volume.shape)}")
    base = base_rules if base_rules is not None else load_rules(None)
    theta = parse_threshold(threshold, float(model["theta"]))
    merged = rules_with_overrides(base, parse_rules_json(rules))
    res = refine(volume, probs=probs, theta=theta, affine=parse_affine(affine, spacing), rules=merged)
    report = dict(res.report)
    report["model"] = dict(model)
    # Computed here while this step sees the whole scan; the flags need the full field of view.
    report["flags"] = scan_flags(volume, res.labels, [float(s) for s in spacing], merged, meta)
    return Annotation(res.labels.astype(np.uint8, copy=False), res.removed.astype(np.uint8, copy=False), report)
