"""The six classes of the label map and the rules file's short names: eanno_contracts' one table (CONTRACTS.md "Labels")."""

from __future__ import annotations

from eanno_contracts.labels import (
    BACKGROUND,
    CLASS_NAMES,
    CYST,
    DUCT,
    LESION_CLASSES,
    LESION_KEYS,
    N_CLASSES,
    PANCREAS,
    PDAC,
    PNET,
)

__all__ = ["BACKGROUND", "CLASS_NAMES", "CYST", "DUCT", "LESION_CLASSES", "LESION_KEYS", "N_CLASSES", "PANCREAS",
           "PDAC", "PNET"]
