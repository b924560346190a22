"""The phantom seeds with a fixed role, in one place (no imports: the commands' --help reads them)."""

HELD_OUT_SEED = 12345  # eanno-train evaluate's and eanno-eval's default held-out phantom seed
# Calibration phantoms: a seed of their own, never a held-out test seed (12345, the model card's 2026) nor
# training's; the default of both `eanno-train calibrate` and `eanno-calibrate threshold`.
CALIBRATION_SEED = 424242
