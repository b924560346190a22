"""The six classes of the label map (CONTRACTS.md "Labels") and the short names the rules file uses."""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = (
    "background",
    "pancreas",
    "pancreatic_duct",
    "pancreatic_pdac",
    "pancreatic_cyst",
    "pancreatic_pnet",
)
BACKGROUND, PANCREAS, DUCT, PDAC, CYST, PNET = range(6)
LESION_CLASSES: tuple[int, ...] = (PDAC, CYST, PNET)
# Short names used as keys in the rules file, per lesion class id.
LESION_KEYS: dict[int, str] = {PDAC: "pdac", CYST: "cyst", PNET: "pnet"}
N_CLASSES = len(CLASS_NAMES)
