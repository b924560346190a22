"""The project's 6-class label map (DESIGN.md, "Labels and files"): the one place these names are defined."""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = (
    "background",
    "pancreas",
    "pancreatic_duct",
    "pancreatic_pdac",
    "pancreatic_cyst",
    "pancreatic_pnet",
)
LESION_LABELS: tuple[int, ...] = (3, 4, 5)
# PanTS / AbdomenAtlas 2.0 name of the union of all lesion classes
LESION_UNION_NAME = "pancreatic_lesion"
