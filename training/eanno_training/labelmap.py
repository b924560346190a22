"""The project's 6-class label map (DESIGN.md, "Labels and files"), taken from eanno_postproc's one table.

Training may import postproc (DESIGN.md), so the names are defined once there; the client keeps its own
copy on purpose, since it imports nothing of ours.
"""

from __future__ import annotations

from eanno_postproc.labels import CLASS_NAMES, LESION_CLASSES

LESION_LABELS: tuple[int, ...] = LESION_CLASSES
# PanTS / AbdomenAtlas 2.0 name of the union of all lesion classes
LESION_UNION_NAME = "pancreatic_lesion"

__all__ = ["CLASS_NAMES", "LESION_LABELS", "LESION_UNION_NAME"]
