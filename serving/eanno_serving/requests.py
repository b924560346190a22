"""Checks on what a client sends, shared by the Triton models: a bad request gets a clear per-request error."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from eanno_contracts.errors import EannoError


class RequestError(EannoError, ValueError):
    """A request the server refuses (bad spacing, volume too large, malformed overrides)."""


def check_spacing(spacing: Any) -> np.ndarray:
    """Return spacing as float64 (3,), or raise ValueError when it is not three finite values > 0."""
    s = np.asarray(spacing, dtype=np.float64).reshape(-1)
    if s.shape != (3,) or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"invalid spacing {s.tolist()}: need three finite values > 0 (mm)")
    return s


def parse_volume_request(volume: np.ndarray, spacing: Any, max_voxels: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate the volume (3D, non-empty, at most max_voxels) and spacing; return them."""
    if volume.ndim != 3 or min(volume.shape) < 1:
        raise RequestError(f"volume must be a non-empty 3D array, got shape {list(volume.shape)}")
    if volume.size > max_voxels:
        raise RequestError(
            f"volume too large: {list(volume.shape)} = {volume.size} voxels > limit {max_voxels}"
        )
    try:
        s = check_spacing(spacing)
    except ValueError as e:
        raise RequestError(str(e)) from e
    return volume, s


def parse_affine(affine: np.ndarray | None, spacing: np.ndarray) -> np.ndarray:
    """The request's 4x4 affine, default diag(spacing, 1); must be finite with an invertible 3x3 part."""
    if affine is None:
        return np.diag([*spacing.tolist(), 1.0])
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)) or abs(np.linalg.det(a[:3, :3])) < 1e-12:
        raise RequestError(f"invalid affine: need a finite 4x4 with an invertible 3x3 part, got {a.tolist()}")
    return a


def parse_threshold(threshold: np.ndarray | None, default: float) -> float:
    """The request's threshold override (one value in (0, 1)), else the model's theta."""
    if threshold is None:
        return default
    t = np.asarray(threshold, dtype=np.float64).reshape(-1)
    if t.shape != (1,) or not np.isfinite(t[0]) or not 0 < t[0] < 1:
        raise RequestError(f"invalid threshold {t.tolist()}: need one value in (0, 1)")
    return float(t[0])


def parse_rules_json(rules: np.ndarray | None) -> dict[str, Any] | None:
    """The request's rules overrides as a dict (JSON object), or None."""
    if rules is None:
        return None
    raw = np.asarray(rules, dtype=object).reshape(-1)
    if raw.shape != (1,):
        raise RequestError(f"rules must be one JSON string, got {raw.shape[0]} elements")
    text = raw[0].decode() if isinstance(raw[0], bytes) else str(raw[0])
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise RequestError(f"rules is not valid JSON: {e}") from e
    if not isinstance(d, dict):
        raise RequestError(f"rules must be a JSON object, got {type(d).__name__}")
    return d
