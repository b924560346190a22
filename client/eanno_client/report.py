"""The server's lesion report with voxel coordinates mapped back onto the input grid, and its summary text."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from eanno_client.classes import CLASS_NAMES


def _is_vec3(v: Any) -> bool:
    return isinstance(v, list | tuple) and len(v) == 3 and all(isinstance(x, int | float) for x in v)


def _map_point(m: np.ndarray, p: Any) -> list[float]:
    q = m @ np.array([*map(float, p), 1.0])
    return [round(float(x), 3) for x in q[:3]]


def _map_box(m: np.ndarray, box: Any) -> Any:
    """Map a box {"min": lo, "max": hi}, [lo, hi] or [lo0, lo1, lo2, hi0, hi1, hi2]; other shapes unchanged."""
    if isinstance(box, dict) and _is_vec3(box.get("min")) and _is_vec3(box.get("max")):
        lo, hi = _map_box(m, [box["min"], box["max"]])
        return {**box, "min": lo, "max": hi}
    flat = isinstance(box, list | tuple) and len(box) == 6 and all(isinstance(x, int | float) for x in box)
    pair = isinstance(box, list | tuple) and len(box) == 2 and all(_is_vec3(c) for c in box)
    if not (flat or pair):
        return box
    lo, hi = (box[:3], box[3:]) if flat else box
    corners = np.array([_map_point(m, c) for c in (lo, hi)])
    new_lo, new_hi = corners.min(axis=0), corners.max(axis=0)
    as_int = all(isinstance(x, int) for x in (*lo, *hi))
    cast = (lambda x: int(round(x))) if as_int else float
    new = [[cast(x) for x in new_lo], [cast(x) for x in new_hi]]
    return [*new[0], *new[1]] if flat else new


def remap_report(
    report: dict[str, Any], can_to_input: np.ndarray, input_shape: tuple[int, ...], input_affine: np.ndarray
) -> dict[str, Any]:
    """A copy of the report whose voxel coordinates (keys with 'voxel', boxes) index the input grid.

    The server works on the canonical grid; the canonical values are kept under each lesion's "canonical".
    Voxel boxes of a flipped axis swap ends, so boxes are re-sorted into lo/hi after mapping.
    """
    out = copy.deepcopy(report)
    for lesion in out.get("lesions", []):
        original: dict[str, Any] = {}
        for key, value in list(lesion.items()):
            if "mm" in key or "world" in key:
                continue
            if "voxel" in key and _is_vec3(value):
                original[key] = value
                lesion[key] = _map_point(can_to_input, value)
            elif "bbox" in key:
                mapped = _map_box(can_to_input, value)
                if mapped is not value:
                    original[key] = value
                    lesion[key] = mapped
        if original:
            lesion["canonical"] = original
    out["grid"] = {
        "voxel_coordinates": "input",
        "shape": list(input_shape),
        "affine": np.round(input_affine, 6).tolist(),
    }
    return out


def _fmt(v: Any, digits: int = 1) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    if isinstance(v, list | tuple):
        return "(" + ", ".join(_fmt(x, digits) for x in v) + ")"
    return str(v)


def lesion_class(lesion: dict[str, Any]) -> str:
    """A lesion's class name whether the report gives a name or an id."""
    c = lesion.get("class", lesion.get("label", "?"))
    return CLASS_NAMES[c] if isinstance(c, int) and 0 <= c < len(CLASS_NAMES) else str(c)


def kept(lesion: dict[str, Any]) -> bool:
    """Whether post-processing kept the candidate as a lesion."""
    return str(lesion.get("decision", "kept")).lower() in {"kept", "keep", "lesion"}


def centroid_voxel(lesion: dict[str, Any]) -> list[float] | None:
    """The lesion's centroid in voxels, whatever the report calls it."""
    for key in ("centroid_voxel", "centroid_vox", "centroid_ijk", "centroid"):
        if _is_vec3(lesion.get(key)):
            return list(lesion[key])
    return None


def centroid_world(lesion: dict[str, Any]) -> list[float] | None:
    """The lesion's centroid in world mm (RAS+), whatever the report calls it."""
    for key in ("centroid_mm", "centroid_world", "centroid_world_mm", "centroid_ras"):
        if _is_vec3(lesion.get(key)):
            return list(lesion[key])
    return None


def summary_text(case: str, report: dict[str, Any], note: str = "") -> str:
    """A short human-readable summary: model, threshold, each lesion kept and each candidate removed."""
    lesions = report.get("lesions", [])
    found = [x for x in lesions if kept(x)]
    model = report.get("model", {})
    lines = [f"Case {case}: {len(found)} lesion(s) kept, {len(lesions) - len(found)} candidate(s) removed."]
    if note:
        lines.append(f"Input: {note}")
    if model:
        lines.append(
            f"Model: {model.get('name', '?')} v{model.get('version', '?')}, "
            f"threshold {report.get('theta', model.get('theta', '?'))}"
        )
    for x in lesions:
        mm = x.get("volume_ml", x.get("ml"))
        lines.append(
            f"  #{x.get('id', '?')} {lesion_class(x)}: {x.get('decision', '?')}"
            + (f", {_fmt(mm, 2)} mL" if mm is not None else "")
            + (f", mean {_fmt(x['hu_mean'])} HU" if isinstance(x.get("hu_mean"), float) else "")
            + (f", centroid voxel {_fmt(centroid_voxel(x))}" if centroid_voxel(x) else "")
            + (f", world {_fmt(centroid_world(x))} mm" if centroid_world(x) else "")
            + (f" ({x['reason']})" if x.get("reason") and not kept(x) else "")
        )
    return "\n".join(lines) + "\n"
