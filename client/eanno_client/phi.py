"""Patient identifiers: written nowhere by default; `--keep-phi` adds them to report.json for matching."""

from __future__ import annotations

from typing import Any

from eanno_client.volume import Volume

# The DICOM patient-module tags copied by --keep-phi (and the ones every output must otherwise omit).
PATIENT_TAGS = ("PatientID", "PatientName", "PatientBirthDate", "OtherPatientIDs")


def patient_identifiers(volume: Volume) -> dict[str, str]:
    """The patient tags of a DICOM input's first slice ({} for NIfTI/MHA, which carry none)."""
    if not volume.datasets:
        return {}
    ds: Any = volume.datasets[0]
    values = {tag: getattr(ds, tag, None) for tag in PATIENT_TAGS}
    return {tag: str(v) for tag, v in values.items() if v not in (None, "")}
