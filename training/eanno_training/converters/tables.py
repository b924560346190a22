"""The label mappings, written down (README "Real data, end to end" repeats them for the user).

MSD Task07 Pancreas (dataset.json labels): 0 background, 1 pancreas, 2 cancer.
  - 1 -> 1 pancreas. MSD draws the whole organ; the duct is not labelled, so class 2 never occurs.
  - 2 -> a lesion class chosen by the user, default 3 pancreatic_pdac. MSD's "cancer" is the pancreatic
    mass of patients operated for a pancreatic neoplasm (PDAC, IPMN, PNET among them) without a
    subtype per voxel; PDAC is the commonest, so it is the default. Sites that know the pathology per
    case should pass a table of their own (per-case subtype) instead.
PANORAMA (DIAGNijmegen/panorama_labels, check against your copy): 0 background, 1 PDAC, 2 veins,
  3 arteries, 4 pancreas parenchyma, 5 pancreatic duct, 6 common bile duct.
  - 1 -> 3 pancreatic_pdac; 4 -> 1 pancreas; 5 -> 2 pancreatic_duct.
  - 2, 3, 6 (vessels, common bile duct) -> 0 background: the 6-class map has no vessel classes, and the
    post-processing treats them as outside the pancreas anyway.
"""

from __future__ import annotations

from types import MappingProxyType

from eanno_contracts.labels import LESION_KEYS

from ..data.labels import CLASS_NAMES, LabelTable, load_label_table

MSD_TASK07 = MappingProxyType({"target": list(CLASS_NAMES), "source": {0: 0, 1: 1, 2: 3}})
PANORAMA = MappingProxyType(
    {"target": list(CLASS_NAMES), "source": {0: 0, 1: 3, 2: 0, 3: 0, 4: 1, 5: 2, 6: 0}}
)
FORMATS = ("msd", "panorama")
TUMOUR_CLASSES = {key: c for c, key in LESION_KEYS.items()}  # MSD --tumour-class name -> label id


def table_for(fmt: str, *, tumour_class: str = "pdac", table: str | None = None) -> LabelTable:
    """The LabelTable of a format (tumour_class sets MSD's label 2); `table` (a YAML/JSON file) overrides."""
    if table is not None:
        return load_label_table(table)
    if fmt == "msd":
        if tumour_class not in TUMOUR_CLASSES:
            raise ValueError(f"tumour class must be one of {', '.join(TUMOUR_CLASSES)}, got {tumour_class!r}")
        return LabelTable.from_dict(
            {"target": list(CLASS_NAMES), "source": {0: 0, 1: 1, 2: TUMOUR_CLASSES[tumour_class]}}
        )
    if fmt == "panorama":
        return LabelTable.from_dict(dict(PANORAMA))
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
