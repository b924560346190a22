"""The model META (CONTRACTS.md "Model META"): its keys and the defaults every reader applies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import EannoError

# Every key a META written by training carries (checkpoint, ONNX metadata_props "eanno", Triton config).
META_KEYS: tuple[str, ...] = ("classes", "spacing", "patch_size", "intensity", "theta", "step", "train")
# The published operating threshold (DESIGN.md, "Post-processing"); a calibrated model carries its own.
DEFAULT_THETA = 0.003
# Tile step as a fraction of the patch when META has none (DESIGN.md allows 0.5-0.7).
DEFAULT_STEP = 0.5
# CT standardisation: HU clipped to this range before anything else (DESIGN.md, "Labels and files").
DEFAULT_CLIP: tuple[float, float] = (-1000.0, 1000.0)


class MetaError(EannoError, ValueError):
    """A model META that lacks a key, or holds a malformed or invalid value; the message names it."""


@dataclass(frozen=True)
class WindowSpec:
    """What the sliding window needs from the model's META (CONTRACTS.md, "Checkpoint and model metadata")."""

    spacing: tuple[float, float, float]
    patch_size: tuple[int, int, int]
    clip: tuple[float, float]
    mean: float
    std: float
    step: float = DEFAULT_STEP
    num_classes: int = 6

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> WindowSpec:
        """Build from a checkpoint/ONNX META dict; a missing or malformed key raises ValueError naming it."""
        try:
            spec = cls(
                spacing=tuple(float(v) for v in meta["spacing"]),  # type: ignore[arg-type]
                patch_size=tuple(int(v) for v in meta["patch_size"]),  # type: ignore[arg-type]
                clip=tuple(float(v) for v in meta["intensity"]["clip"]),  # type: ignore[arg-type]
                mean=float(meta["intensity"]["mean"]),
                std=float(meta["intensity"]["std"]),
                step=float(meta.get("step", DEFAULT_STEP)),
                num_classes=len(meta.get("classes", range(6))),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise MetaError(f"model META is missing or has a malformed entry: {e!r}") from e
        if len(spec.spacing) != 3 or len(spec.patch_size) != 3 or len(spec.clip) != 2:
            raise MetaError(f"model META needs 3 spacings, 3 patch sizes, 2 clip values: {meta!r}")
        if not (0 < spec.step <= 1) or spec.std <= 0 or min(spec.patch_size) < 1 or min(spec.spacing) <= 0:
            raise MetaError(f"model META has an invalid step, std, patch size or spacing: {meta!r}")
        return spec
