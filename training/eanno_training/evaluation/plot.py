"""The FROC plot (PNG): pooled sensitivity against FP components per scan, before and after post-processing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .froc import Froc
from .matching import LESION_CLASSES


def plot_froc(
    result: Froc, path: str | Path, *, star: dict[str, Any] | None = None, title: str = "FROC"
) -> Path:
    """Write a FROC PNG (pooled curves plus thin per-class 'after' curves); atomic rename when complete."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for stage, style in (("before", "--"), ("after", "-")):
        fp, se = result.series(stage)
        order = np.argsort(fp)
        ax.plot(fp[order], se[order], style, marker="o", ms=3, label=f"pooled, {stage} post-processing")
    for name in LESION_CLASSES.values():
        fp, se = result.series("after", name)
        if np.isfinite(se).any():
            order = np.argsort(fp)
            ax.plot(fp[order], se[order], ":", lw=1, label=f"{name.removeprefix('pancreatic_')}, after")
    if star and star.get("reached"):
        i = star["index"]
        fp, se = result.series(star["stage"])
        ax.plot([fp[i]], [se[i]], "k*", ms=12, label=f"theta* = {star['theta']:.3g}")
        ax.axhline(star["target"], color="grey", lw=0.8)
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlabel("false-positive components per scan")
    ax.set_ylabel("lesion sensitivity")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{title} ({result.scans} scans)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
