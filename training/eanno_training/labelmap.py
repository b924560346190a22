"""The project's 6-class label map (DESIGN.md, "Labels and files"), taken from eanno_contracts' one table."""

from __future__ import annotations

from eanno_contracts.labels import CLASS_NAMES, LESION_CLASSES, LESION_UNION_NAME

LESION_LABELS: tuple[int, ...] = LESION_CLASSES

__all__ = ["CLASS_NAMES", "LESION_LABELS", "LESION_UNION_NAME"]
