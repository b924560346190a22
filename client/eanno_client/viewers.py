"""Viewer files: an ITK-SNAP label description, a 3D Slicer colour table and the commands that open a case."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from eanno_client.classes import CLASS_NAMES, COLOURS


def itksnap_label_description() -> str:
    """ITK-SNAP label description text naming and colouring all six classes (IDX R G B A VIS MSH "LABEL")."""
    lines = [
        "################################################",
        "# ITK-SnAP Label Description File",
        "# EfficientAnno classes (eanno-client)",
        "# Columns: IDX -R- -G- -B- -A-- VIS MSH LABEL",
        "################################################",
    ]
    for idx, (name, (r, g, b)) in enumerate(zip(CLASS_NAMES, COLOURS, strict=True)):
        alpha, vis = (0, 0) if idx == 0 else (1, 1)
        label = "Clear Label" if idx == 0 else name
        lines.append(f'{idx:5d} {r:5d} {g:4d} {b:4d} {alpha:8d} {vis:2d} {vis:2d}    "{label}"')
    return "\n".join(lines) + "\n"


def slicer_color_table() -> str:
    """3D Slicer colour table text (index name R G B A), all six classes; background transparent."""
    lines = ["# Color table file for EfficientAnno labels (eanno-client)", f"# {len(CLASS_NAMES)} values"]
    for idx, (name, (r, g, b)) in enumerate(zip(CLASS_NAMES, COLOURS, strict=True)):
        lines.append(f"{idx} {name} {r} {g} {b} {0 if idx == 0 else 255}")
    return "\n".join(lines) + "\n"


def viewer_commands(image: Path, labels: Path, itksnap_labels: Path, slicer_table: Path) -> dict[str, str]:
    """Shell commands that open the image with its labels in ITK-SNAP and in 3D Slicer."""
    q = shlex.quote
    itk = f"itksnap -g {q(str(image))} -s {q(str(labels))} -l {q(str(itksnap_labels))}"
    # json.dumps gives double-quoted Python string literals, so shlex.quote needs no escaping for most paths.
    s = json.dumps
    code = (
        f"import slicer; ct = slicer.util.loadColorTable({s(str(slicer_table))}); "
        f"slicer.util.loadVolume({s(str(image))}); "
        f'slicer.util.loadLabelVolume({s(str(labels))}, {{"colorNodeID": ct.GetID()}})'
    )
    return {"itksnap": itk, "slicer": f"Slicer --python-code {q(code)}"}
