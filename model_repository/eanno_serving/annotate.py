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
from eanno_postproc.rules import default_rules_text

from eanno_serving.requests import RequestError, parse_affine, parse_rules_json, parse_threshold


def site_rules(model_dir: Path, params: Mapping[str, str]) -> tuple[Rules, dict[str, str]]:
    """The rules the repository carries (rules_file parameter) or the packaged defaults, and what they are."""
    name = params.get("rules_file")
    if not name:
        text = default_rules_text()
        return load_rules(None), {"source": "packaged defaults", "sha256": hashlib.sha256(text.encode()).hexdigest()}
    path = model_dir / name
    rules = load_rules(path)  # RulesError names the file and the bad key: the model then fails to load
    return rules, {"source": params.get("rules_source", name),
                   "sha256": hashlib.sha256(path.read_text(encoding="utf-8").encode()).hexdigest()}


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
             rules_info: Mapping[str, str] | None = None) -> Annotation:
    """Refine the window's probabilities into labels, removed candidates and the report (+ model info)."""
    if probs.shape[1:] != volume.shape:
        raise RequestError(f"probs {list(probs.shape)} do not match volume {list(volume.shape)}")
    base = base_rules if base_rules is not None else load_rules(None)
    theta = parse_threshold(threshold, float(model["theta"]))
    overrides = parse_rules_json(rules)
    res = refine(volume, probs=probs, theta=theta, affine=parse_affine(affine, spacing),
                 rules=rules_with_overrides(base, overrides))
    report = dict(res.report)
    report["model"] = dict(model)
    # The rules in force: the repository's file (source, hash) and this request's overrides on top.
    report["rules"] = {**(rules_info or {"source": "caller's rules" if base_rules else "packaged defaults"}),
                       "overrides": overrides or None}
    return Annotation(res.labels.astype(np.uint8, copy=False), res.removed.astype(np.uint8, copy=False), report)
