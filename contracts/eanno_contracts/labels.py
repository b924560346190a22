"""The label map (CONTRACTS.md "Labels"): the six class names, their ids, and the rules file's short names.

The one place the class names are spelled out; every package (the client included) imports them from here.
"""

from __future__ import annotations

# id -> AbdomenAtlas file name (CASE/segmentations/<name>.nii.gz); the id is the label value on disk.
CLASS_NAMES: tuple[str, ...] = (
    "background",
    "pancreas",
    "pancreatic_duct",
    "pancreatic_pdac",
    "pancreatic_cyst",
    "pancreatic_pnet",
)
N_CLASSES = len(CLASS_NAMES)
BACKGROUND, PANCREAS, DUCT, PDAC, CYST, PNET = range(N_CLASSES)
LESION_CLASSES: tuple[int, ...] = (PDAC, CYST, PNET)
# Short names the rules file (eanno_postproc/rules.yaml) uses as keys, per lesion class id: the file
# name without its "pancreatic_" prefix.
LESION_KEYS: dict[int, str] = {c: CLASS_NAMES[c].removeprefix("pancreatic_") for c in LESION_CLASSES}
# PanTS / AbdomenAtlas 2.0 name of the union of all lesion classes.
LESION_UNION_NAME = "pancreatic_lesion"


def lesion_names() -> dict[int, str]:
    """Lesion class id -> its file name ({3: "pancreatic_pdac", ...})."""
    return {c: CLASS_NAMES[c] for c in LESION_CLASSES}
