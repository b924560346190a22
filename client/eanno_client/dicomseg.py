"""A DICOM-SEG (highdicom) of the labels that references the source DICOM series."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from eanno_client.atomic import write_atomic
from eanno_client.classes import CLASS_NAMES
from eanno_client.volume import InputError, MissingExtra, Volume

# (category, type) SNOMED CT concepts per class id, from pydicom's code dictionary.
CODES = {
    1: ("Tissue", "Pancreas"),
    2: ("Tissue", "PancreaticDuct"),
    3: ("MorphologicallyAbnormalStructure", "Adenocarcinoma"),
    4: ("MorphologicallyAbnormalStructure", "Cyst"),
    5: ("MorphologicallyAbnormalStructure", "NeuroendocrineTumor"),
}


# Type 2 attributes of the patient and study modules that highdicom copies from the source images: they
# must be present but may be empty, and anonymised or scanner-exported series often leave them out.
TYPE2_TAGS = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
)


def _with_type2_tags(ds: Any) -> Any:
    """A copy of a source header with every missing Type 2 patient/study tag present and empty."""
    out = copy.deepcopy(ds)  # a shallow copy would share (and change) the caller's element dict
    for tag in TYPE2_TAGS:
        if tag not in out:
            setattr(out, tag, "")
    return out


def write_dicom_seg(path: Path, volume: Volume, labels: np.ndarray) -> Path:
    """Write `labels` (input grid of a DICOM series) as a binary DICOM-SEG with one segment per class."""
    try:
        import highdicom as hd
        from pydicom.sr.codedict import codes
    except ImportError as e:
        raise MissingExtra("DICOM-SEG output needs highdicom (pip install 'eanno-client[all]')") from e
    if volume.kind != "dicom" or len(volume.datasets) != labels.shape[2]:
        raise InputError(f"{volume.source}: DICOM-SEG needs the DICOM series the labels were computed on")
    algorithm = hd.AlgorithmIdentificationSequence(
        name="EfficientAnno", version="0.1.0", family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=cls,
            segment_label=CLASS_NAMES[cls],
            segmented_property_category=getattr(codes.SCT, CODES[cls][0]),
            segmented_property_type=getattr(codes.SCT, CODES[cls][1]),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for cls in range(1, len(CLASS_NAMES))
    ]
    # The volume is (i, j, k) = (column, row, slice); DICOM frames are (slice, row, column).
    sources = [_with_type2_tags(ds) for ds in volume.datasets]
    frames = np.ascontiguousarray(labels.transpose(2, 1, 0)).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=900,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="EfficientAnno",
        manufacturer_model_name="eanno-client",
        software_versions="0.1.0",
        device_serial_number="0",
        omit_empty_frames=False,
    )
    return write_atomic(path, lambda p: seg.save_as(p))
