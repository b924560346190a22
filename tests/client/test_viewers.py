"""Viewer files parse line by line and name and colour all six classes."""

from __future__ import annotations

import re
import shlex

from eanno_client.classes import CLASS_NAMES, COLOURS
from eanno_client.viewers import itksnap_label_description, slicer_color_table, viewer_commands

ITKSNAP_LINE = re.compile(
    r'^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([01](?:\.\d+)?)\s+([01])\s+([01])\s+"([^"]+)"$'
)


def test_itksnap_label_description_every_line():
    entries = []
    for line in itksnap_label_description().splitlines():
        if line.startswith("#"):
            continue
        m = ITKSNAP_LINE.match(line)
        assert m, f"not an ITK-SNAP label line: {line!r}"
        entries.append(m.groups())
    assert [int(e[0]) for e in entries] == list(range(6))
    assert [e[7] for e in entries] == ["Clear Label", *CLASS_NAMES[1:]]
    assert [tuple(int(v) for v in e[1:4]) for e in entries] == list(COLOURS)
    assert entries[0][4:7] == ("0", "0", "0") and all(e[4:7] == ("1", "1", "1") for e in entries[1:])


def test_slicer_color_table_every_line():
    rows = []
    for line in slicer_color_table().splitlines():
        if line.startswith("#"):
            continue
        parts = line.split()
        assert len(parts) == 6, line
        idx, name, *rgba = parts
        rows.append((int(idx), name, tuple(int(v) for v in rgba)))
        assert all(0 <= int(v) <= 255 for v in rgba)
    assert [r[0] for r in rows] == list(range(6))
    assert [r[1] for r in rows] == list(CLASS_NAMES)
    assert [r[2][:3] for r in rows] == list(COLOURS)
    assert rows[0][2][3] == 0 and all(r[2][3] == 255 for r in rows[1:])


def test_viewer_commands_quote_paths(tmp_path):
    d = tmp_path / "a case"
    cmds = viewer_commands(d / "ct.nii.gz", d / "labels.nii.gz", d / "l.txt", d / "c.ctbl")
    itk = shlex.split(cmds["itksnap"])
    assert itk == [
        "itksnap",
        "-g",
        str(d / "ct.nii.gz"),
        "-s",
        str(d / "labels.nii.gz"),
        "-l",
        str(d / "l.txt"),
    ]
    slicer = shlex.split(cmds["slicer"])
    assert slicer[:2] == ["Slicer", "--python-code"]
    compile(slicer[2], "slicer", "exec")  # the code Slicer runs is valid Python
    assert str(d / "labels.nii.gz") in slicer[2] and str(d / "c.ctbl") in slicer[2]
