"""A preview PNG: axial slices through each lesion with label contours, in radiological display."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eanno_client.atomic import write_atomic
from eanno_client.classes import CLASS_NAMES, COLOURS, LESION_IDS
from eanno_client.orientation import nonzero_box
from eanno_client.volume import MissingExtra

MAX_PANELS = 6
WINDOW = (-160, 240)  # abdominal soft-tissue window (HU)


def lesion_slices(labels: np.ndarray, centroids: list[tuple[str, float]]) -> list[tuple[str, int]]:
    """(title, axial index) per lesion from report centroids (canonical k); else the slice with most lesion."""
    nk = labels.shape[2]
    panels = [(title, int(np.clip(round(k), 0, nk - 1))) for title, k in centroids]
    if not panels:
        # Counted inside the labelled box only, with a range test rather than np.isin (10x faster).
        box = nonzero_box(labels)
        lab = labels[box]
        lesion = ((lab >= min(LESION_IDS)) & (lab <= max(LESION_IDS))).sum(axis=(0, 1))
        organ = (lab > 0).sum(axis=(0, 1))
        if lesion.any():
            panels = [("largest lesion slice", box[2].start + int(lesion.argmax()))]
        elif organ.any():
            panels = [("no lesion: pancreas", box[2].start + int(organ.argmax()))]
        else:
            panels = [("no labels: middle slice", nk // 2)]
    return panels[:MAX_PANELS]


def _display(plane: np.ndarray) -> np.ndarray:
    # Canonical RAS (i -> right, j -> anterior): radiological display puts the patient's right on the
    # viewer's left and anterior at the top, so both axes are flipped and the plane transposed.
    return plane[::-1, ::-1].T


def write_preview(
    path: Path,
    ct: np.ndarray,
    labels: np.ndarray,
    spacing: np.ndarray,
    centroids: list[tuple[str, float]],
    title: str,
    flags: Sequence[str] = (),
) -> Path:
    """Save the preview PNG of canonical-order ct/labels to `path` (matplotlib, no display needed);
    the report's flags, if any, go under the title in red (a reviewer sees the distrust first)."""
    # The object API (no pyplot): no global figure state, so batch threads can draw at the same time.
    try:
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError as e:
        raise MissingExtra(
            f"the preview needs matplotlib (pip install 'eanno-client[all]', or --no-preview): {e}"
        ) from e

    panels = lesion_slices(labels, centroids)
    fig = Figure(figsize=(4 * len(panels), 4.4 + 0.25 * len(flags)))
    axes = fig.subplots(1, len(panels), squeeze=False)
    aspect = float(spacing[1] / spacing[0])
    for ax, (name, k) in zip(axes[0], panels, strict=True):
        ax.imshow(
            _display(ct[:, :, k]),
            cmap="gray",
            vmin=WINDOW[0],
            vmax=WINDOW[1],
            aspect=aspect,
            interpolation="nearest",
        )
        plane = _display(labels[:, :, k])
        for cls in range(1, len(CLASS_NAMES)):
            mask = plane == cls
            if mask.any():
                ax.contour(
                    mask.astype(np.float32),
                    levels=[0.5],
                    colors=[np.array(COLOURS[cls]) / 255],
                    linewidths=1.2,
                )
        ax.set_title(f"{name}\naxial k={k}", fontsize=9)
        ax.set_axis_off()
        ax.text(0.01, 0.5, "R", color="yellow", transform=ax.transAxes, fontsize=9, va="center")
        ax.text(0.97, 0.5, "L", color="yellow", transform=ax.transAxes, fontsize=9, va="center")
    handles = [Line2D([], [], color=np.array(COLOURS[c]) / 255, label=CLASS_NAMES[c]) for c in range(1, 6)]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.suptitle(
        "\n".join([title, *(f"FLAG: {f}" for f in flags)]), fontsize=10, color="red" if flags else "black"
    )
    fig.tight_layout(rect=(0, 0.06, 1, 0.95 - 0.05 * len(flags)))
    return write_atomic(path, lambda p: fig.savefig(p, dpi=80, format="png"))
