"""The review comparison's limits, in a module of their own so that `eanno-client review --help` loads no scipy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReviewSettings:
    """Every limit of the review comparison in one place (overridden from the command line)."""

    tolerance_mm: float = 2.0  # surface Dice tolerance (Nikolov et al. 2021 use organ-specific mm)
    resize_fraction: float = 0.10  # |revised - model| / model volume above this -> "resized"
    reshape_below: float = 0.90  # surface Dice below this -> "reshaped"
    connectivity: int = 26  # lesion components, as the post-processing rules' default

    def __post_init__(self) -> None:
        if self.tolerance_mm < 0:
            raise ValueError(f"tolerance_mm must be >= 0, got {self.tolerance_mm}")
        if not 0 <= self.reshape_below <= 1:
            raise ValueError(f"reshape_below must be in [0, 1], got {self.reshape_below}")
        if self.resize_fraction < 0:
            raise ValueError(f"resize_fraction must be >= 0, got {self.resize_fraction}")
        if self.connectivity not in (6, 18, 26):
            raise ValueError(f"connectivity must be 6, 18 or 26, got {self.connectivity}")
