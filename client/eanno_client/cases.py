"""Turn the command line's INPUT... (files, DICOM folders, folders of cases, list files) into named cases."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from eanno_client.readers import ITK_SUFFIXES, NIFTI_SUFFIXES, volume_kind
from eanno_client.volume import InputError

LIST_SUFFIXES = (".txt", ".lst", ".list")
# nnU-Net v2 names each input channel CASE_XXXX; the model takes one channel (CT), so _0000 is the CT
# and any other channel number is an input this model cannot use.
CHANNEL = re.compile(r"^(?P<case>.+)_(?P<channel>000\d)$")  # _0000-_0009; _2024 stays a name
ATLAS_IMAGE = "ct.nii.gz"  # an AbdomenAtlas case folder holds CASE/ct.nii.gz


@dataclass(frozen=True)
class Case:
    """One case to annotate: its output name (OUT/<name>/) and the path read."""

    name: str
    path: Path


def case_name(path: Path) -> str:
    """The case name of an input: file name without its image suffix and nnU-Net's _0000, or the folder name."""
    name = path.name
    if path.is_file() or not path.exists():
        if path.parent.name and name == ATLAS_IMAGE:
            name = path.parent.name
        for suffix in (*NIFTI_SUFFIXES, *ITK_SUFFIXES):
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
        if (m := CHANNEL.match(name)) is not None:
            if m["channel"] != "0000":
                raise InputError(
                    f"{path}: nnU-Net channel {m['channel']} (file name ends in _{m['channel']}); this "
                    f"model takes one channel, the CT as {m['case']}_0000: give that file, or rename "
                    "this one if it is not a channel suffix"
                )
            name = m["case"]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "case"


def _case_path(path: Path) -> Path | None:
    """The readable path for one case at `path` (a file, a DICOM folder or an AbdomenAtlas case), else None."""
    if path.is_dir() and (path / ATLAS_IMAGE).is_file() and volume_kind(path) is None:
        return path / ATLAS_IMAGE
    return path if volume_kind(path) is not None else None


def _expand(path: Path, seen_lists: set[Path]) -> list[Path]:
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    direct = _case_path(path)
    if direct is not None:
        return [direct]
    if path.is_file() and path.name.lower().endswith(LIST_SUFFIXES):
        if path.resolve() in seen_lists:
            raise InputError(f"{path}: list file includes itself")
        seen_lists.add(path.resolve())
        out: list[Path] = []
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            target = Path(entry).expanduser()
            target = target if target.is_absolute() else path.parent / target
            try:
                out.extend(_expand(target, seen_lists))
            except InputError as e:
                raise InputError(f"{path}, line {n}: {e}") from e
        return out
    if path.is_dir():
        children = [c for c in sorted(path.iterdir()) if not c.name.startswith(".")]
        found = [p for c in children if (p := _case_path(c)) is not None]
        if not found:
            raise InputError(f"{path}: holds no DICOM files and no cases (NIfTI, MHA/NRRD, DICOM folders)")
        return found
    raise InputError(
        f"{path}: not a NIfTI, MHA/NRRD, DICOM folder, folder of cases or list file "
        f"({', '.join(LIST_SUFFIXES)})"
    )


def expand_inputs(inputs: list[Path]) -> list[Case]:
    """Every case named by the inputs, in order, with unique output names (a suffix _2, _3 on clashes)."""
    seen_lists: set[Path] = set()
    paths: list[Path] = []
    for item in inputs:
        for p in _expand(Path(item), seen_lists):
            if p.resolve() not in {q.resolve() for q in paths}:
                paths.append(p)
    cases: list[Case] = []
    used: dict[str, int] = {}
    for p in paths:
        base = case_name(p)
        used[base] = used.get(base, 0) + 1
        name = base if used[base] == 1 else f"{base}_{used[base]}"
        cases.append(Case(name, p))
    return cases
