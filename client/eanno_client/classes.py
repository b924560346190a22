"""The label classes (from eanno_contracts), their viewer colours and the output file names."""

from __future__ import annotations

# id -> AbdomenAtlas name, lesion ids, the union's name: the one table every package shares (CONTRACTS.md).
from eanno_contracts.labels import CLASS_NAMES, LESION_UNION_NAME
from eanno_contracts.labels import LESION_CLASSES as LESION_IDS

__all__ = ["CLASS_NAMES", "COLOURS", "LESION_IDS", "LESION_UNION_NAME"]

# RGB per class; background is transparent in both viewers.
COLOURS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (230, 190, 120),
    (60, 160, 255),
    (230, 40, 40),
    (40, 200, 90),
    (200, 60, 220),
)
