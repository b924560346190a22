"""The model META (CONTRACTS.md "Model META"): its keys and the defaults every reader applies."""

from __future__ import annotations

# Every key a META written by training carries (checkpoint, ONNX metadata_props "eanno", Triton config).
META_KEYS: tuple[str, ...] = ("classes", "spacing", "patch_size", "intensity", "theta", "step", "train")
# The published operating threshold (DESIGN.md, "Post-processing"); a calibrated model carries its own.
DEFAULT_THETA = 0.003
# Tile step as a fraction of the patch when META has none (DESIGN.md allows 0.5-0.7).
DEFAULT_STEP = 0.5
# CT standardisation: HU clipped to this range before anything else (DESIGN.md, "Labels and files").
DEFAULT_CLIP: tuple[float, float] = (-1000.0, 1000.0)
