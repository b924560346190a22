"""Every per-case output, under predictable names, each written atomically on exactly the input grid."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from eanno_client.atomic import write_atomic, write_text_atomic
from eanno_client.classes import CLASS_NAMES, LESION_IDS, LESION_UNION_NAME
from eanno_client.fastio import write_nifti
from eanno_client.orientation import Canonical, canonical_to_input_voxel, from_canonical, nonzero_box
from eanno_client.report import centroid_voxel, kept, lesion_class, remap_report, summary_text
from eanno_client.viewers import itksnap_label_description, slicer_color_table, viewer_commands
from eanno_client.volume import Volume

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputOptions:
    """Which optional outputs to write."""

    preview: bool = True
    dicom_seg: bool = False
    keep_phi: bool = False  # --keep-phi: DICOM patient identifiers in report.json (nowhere else)
    layout: str = (
        "case"  # "case": OUT/CASE/labels.nii.gz ...; "flat" (nnU-Net): OUT/CASE.nii.gz + OUT/CASE.json
    )


LAYOUTS = ("case", "flat")


@dataclass(frozen=True)
class CasePaths:
    """The output file names of one case (documented in client/README.md).

    Layout "case": everything inside root = OUT/<case>/. Layout "flat" (`flat` = the case name, root = OUT):
    nnU-Net's OUT/<case>.nii.gz and OUT/<case>.json, and OUT/<case>.png / <case>.seg.dcm only when asked.
    """

    root: Path
    flat: str | None = None

    @classmethod
    def for_case(cls, out: Path, case: str, layout: str = "case") -> CasePaths:
        """The paths of `case` under the output folder `out` in `layout`."""
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
        return cls(out, case) if layout == "flat" else cls(out / case)

    def rebased(self, root: Path) -> CasePaths:
        """The same names under another root (a staging folder)."""
        return CasePaths(root, self.flat)

    @property
    def labels(self) -> Path:
        return self.root / f"{self.flat}.nii.gz" if self.flat else self.root / "labels.nii.gz"

    @property
    def segmentations(self) -> Path:
        return self.root / "segmentations"

    def segmentation(self, name: str) -> Path:
        return self.segmentations / f"{name}.nii.gz"

    @property
    def removed(self) -> Path:
        return self.root / "removed.nii.gz"

    @property
    def report(self) -> Path:
        return self.root / f"{self.flat}.json" if self.flat else self.root / "report.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.txt"

    @property
    def itksnap(self) -> Path:
        return self.root / "labels.itksnap.txt"

    @property
    def slicer(self) -> Path:
        return self.root / "labels.slicer.ctbl"

    @property
    def commands(self) -> Path:
        return self.root / "open_in_viewers.sh"

    @property
    def preview(self) -> Path:
        return self.root / f"{self.flat}.png" if self.flat else self.root / "preview.png"

    @property
    def dicom_seg(self) -> Path:
        return self.root / f"{self.flat}.seg.dcm" if self.flat else self.root / "seg.dcm"

    def expected(self, options: OutputOptions, is_dicom: bool) -> list[Path]:
        """Every file a finished case has (what --continue checks)."""
        if self.flat:
            extra = [
                p
                for p, on in (
                    (self.preview, options.preview),
                    (self.dicom_seg, options.dicom_seg and is_dicom),
                )
                if on
            ]
            return [self.labels, *extra, self.report]
        names = [*CLASS_NAMES[1:], LESION_UNION_NAME]
        paths = [
            self.labels,
            *(self.segmentation(n) for n in names),
            self.removed,
            self.summary,
            self.itksnap,
            self.slicer,
            self.commands,
            self.report,
        ]
        if options.preview:
            paths.append(self.preview)
        if options.dicom_seg and is_dicom:
            paths.append(self.dicom_seg)
        return paths


def save_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> Path:
    """A uint8 NIfTI on `affine` with qform = sform = affine (code 1, scanner), written atomically."""
    img = nib.Nifti1Image(np.asarray(array, dtype=np.uint8), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm")
    return write_atomic(path, lambda p: write_nifti(p, img))


def abdomenatlas_masks(labels: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """(name, uint8 mask) in AbdomenAtlas naming: pancreas = whole organ (parenchyma, duct, lesions), each
    other class, and the lesion union. Each mask reuses one buffer: write it before taking the next."""
    # One reused buffer in the labels' (Fortran) memory order: no fresh 80 MB allocation per mask for a
    # 512 x 512 x 300 case, and nibabel writes it without a transpose. Outside the labelled box every
    # mask is 0, so only the box is computed (the server labels only around the pancreas).
    buf = np.zeros(labels.shape, dtype=bool, order="F" if labels.flags.f_contiguous else "C")
    view = buf.view(np.uint8)
    box = nonzero_box(labels)
    lab, out = labels[box], buf[box]
    np.greater(lab, 0, out=out)
    yield "pancreas", view
    for cls in range(2, len(CLASS_NAMES)):
        np.equal(lab, cls, out=out)
        yield CLASS_NAMES[cls], view
    lo, hi = min(LESION_IDS), max(LESION_IDS)
    np.logical_and(lab >= lo, lab <= hi, out=out)
    yield LESION_UNION_NAME, view


def viewer_image(volume: Volume) -> Path:
    """The file a viewer opens as the image (for a DICOM series, one of its files: both viewers load the series)."""
    if volume.kind == "dicom" and volume.datasets:
        return Path(volume.datasets[0].filename).resolve()
    return volume.source.resolve()


def write_case(
    paths: CasePaths,
    case: str,
    volume: Volume,
    canonical: Canonical,
    labels_can: np.ndarray,
    removed_can: np.ndarray,
    report: dict[str, Any],
    options: OutputOptions,
) -> dict[str, Any]:
    """Map the server's canonical outputs onto the input grid and write every output; returns the report.

    All of a case's files are written into a staging folder beside the outputs and moved into place only
    when every one is whole (report last), so a case that fails half-way leaves nothing behind.
    """
    parent = paths.root if paths.flat else paths.root.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{case}.", suffix=".part", dir=parent))
    try:
        staged = paths.rebased(staging if paths.flat else staging / paths.root.name)
        out = _write_files(staged, paths, case, volume, canonical, labels_can, removed_can, report, options)
        _commit(staged, paths)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _commit(staged: CasePaths, final: CasePaths) -> None:
    """Move every staged file to its final name (the report last: its presence means the case is whole)."""
    files = sorted((p for p in staged.root.rglob("*") if p.is_file()), key=lambda p: p == staged.report)
    for src in files:
        dst = final.root / src.relative_to(staged.root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)


def _write_files(
    paths: CasePaths,
    final: CasePaths,
    case: str,
    volume: Volume,
    canonical: Canonical,
    labels_can: np.ndarray,
    removed_can: np.ndarray,
    report: dict[str, Any],
    options: OutputOptions,
) -> dict[str, Any]:
    """Write every output of the layout under `paths` (viewer commands name the `final` paths)."""
    labels = from_canonical(labels_can, canonical)
    removed = from_canonical(removed_can, canonical)
    affine = volume.affine
    save_nifti(paths.labels, labels, affine)
    if paths.flat:  # nnU-Net layout: labels and report, and only the extras asked for
        return _write_flat(paths, case, volume, canonical, labels_can, labels, report, options)
    for name, mask in abdomenatlas_masks(labels):
        save_nifti(paths.segmentation(name), mask, affine)
    save_nifti(paths.removed, removed, affine)
    write_text_atomic(paths.itksnap, itksnap_label_description())
    write_text_atomic(paths.slicer, slicer_color_table())
    commands = viewer_commands(
        viewer_image(volume), final.labels.resolve(), final.itksnap.resolve(), final.slicer.resolve()
    )
    script = "#!/bin/sh\n# Open this case for review (pick one).\n" + "".join(
        f"# {name}\n{cmd}\n" for name, cmd in commands.items()
    )
    write_text_atomic(paths.commands, script)
    _write_extras(paths, case, volume, canonical, labels_can, labels, report, options)
    out = _case_report(case, volume, canonical, labels, report, options)
    out["viewers"] = commands
    write_text_atomic(
        paths.summary,
        summary_text(case, out, volume.note)
        + "".join(f"Open in {name}: {cmd}\n" for name, cmd in commands.items()),
    )
    write_text_atomic(paths.report, json.dumps(out, indent=2) + "\n")
    return out


def _write_extras(
    paths: CasePaths,
    case: str,
    volume: Volume,
    canonical: Canonical,
    labels_can: np.ndarray,
    labels: np.ndarray,
    report: dict[str, Any],
    options: OutputOptions,
) -> None:
    """The preview and the DICOM-SEG, when asked for."""
    if options.preview:
        from eanno_client.preview import write_preview

        # The largest kept lesions first: the preview has room for a few panels only.
        lesions = sorted(
            (x for x in report.get("lesions", []) if kept(x)), key=lambda x: -float(x.get("voxels", 0))
        )
        centroids = [
            (f"#{x.get('id', '?')} {lesion_class(x)}", c[2])
            for x in lesions
            if (c := centroid_voxel(x)) is not None
        ]
        write_preview(
            paths.preview,
            canonical.data,
            labels_can,
            canonical.spacing,
            centroids,
            case,
            flags=[str(f) for f in report.get("flags") or []],
        )
    if options.dicom_seg and volume.kind == "dicom":
        from eanno_client.dicomseg import write_dicom_seg

        write_dicom_seg(paths.dicom_seg, volume, labels)


def _case_report(
    case: str,
    volume: Volume,
    canonical: Canonical,
    labels: np.ndarray,
    report: dict[str, Any],
    options: OutputOptions,
) -> dict[str, Any]:
    """The server's report with input-grid coordinates, the case and the input described."""
    affine = volume.affine
    out = remap_report(report, canonical_to_input_voxel(canonical, affine), labels.shape, affine)
    out["case"] = case
    out["input"] = {
        "path": str(volume.source),
        "kind": volume.kind,
        "note": volume.note,
        "series_uid": volume.series_uid,
    }
    if options.keep_phi:
        from eanno_client.phi import patient_identifiers

        out["input"]["patient"] = patient_identifiers(volume)
    return out


def _write_flat(
    paths: CasePaths,
    case: str,
    volume: Volume,
    canonical: Canonical,
    labels_can: np.ndarray,
    labels: np.ndarray,
    report: dict[str, Any],
    options: OutputOptions,
) -> dict[str, Any]:
    """nnU-Net layout: OUT/<case>.nii.gz is written; add the extras asked for and OUT/<case>.json."""
    _write_extras(paths, case, volume, canonical, labels_can, labels, report, options)
    out = _case_report(case, volume, canonical, labels, report, options)
    write_text_atomic(paths.report, json.dumps(out, indent=2) + "\n")
    return out
