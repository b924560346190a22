"""Threshold calibration output: theta* written into a checkpoint's META, where serving reads it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from eanno_contracts.errors import EannoError

from ..checkpoint import load_checkpoint


class ThresholdError(EannoError, ValueError):
    """The threshold cannot be written (bad value, unreadable checkpoint)."""


def write_theta(src: str | Path | None, dst: str | Path, theta: float, provenance: dict[str, Any]) -> Path:
    """Copy checkpoint src (None -> shipped) to dst with META theta = theta and the calibration recorded.

    The payload is rewritten as read (weights, resume state, format untouched); only META changes:
    "theta", and "train"."theta_calibration" for the provenance (META's free-form record), so the
    checkpoint stays in the format of CONTRACTS.md.
    """
    if not 0.0 < float(theta) <= 1.0:
        raise ThresholdError(f"theta must be in (0, 1], got {theta}")
    ck = load_checkpoint(src)  # validates the file and names it in any error
    from ..checkpoint import shipped_checkpoint_path

    src_path = Path(src) if src is not None else shipped_checkpoint_path()
    payload = torch.load(src_path, map_location="cpu", weights_only=True)
    meta = dict(ck.meta)
    meta["theta"] = float(theta)
    meta["train"] = {**dict(meta.get("train") or {}), "theta_calibration": provenance}
    payload["meta"] = meta
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    load_checkpoint(dst)  # what was written must read back
    return dst
