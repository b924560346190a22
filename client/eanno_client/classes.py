"""The six label classes, their viewer colours and the output file names: the client's one table."""

from __future__ import annotations

# id -> AbdomenAtlas name (DESIGN.md, "Labels and files"); the server uses the same ids.
CLASS_NAMES: tuple[str, ...] = (
    "background",
    "pancreas",
    "pancreatic_duct",
    "pancreatic_pdac",
    "pancreatic_cyst",
    "pancreatic_pnet",
)
LESION_IDS: tuple[int, ...] = (3, 4, 5)
LESION_UNION_NAME = "pancreatic_lesion"
# RGB per class; background is transparent in both viewers.
COLOURS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (230, 190, 120),
    (60, 160, 255),
    (230, 40, 40),
    (40, 200, 90),
    (200, 60, 220),
)
