"""`make demo`: a generated case through `eanno-postproc refine`, and its lesion report as a table.

Until the serving path lands, the demo is the post-processing alone: a deterministic synthetic case
(seeded: a pancreas tube, its duct, candidates of every kind the rules decide) written as NIfTI to
out/demo/, refined by the command exactly as a user would run it, the report printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from eanno_postproc.synthetic import make_case

OUT = Path(__file__).resolve().parents[1] / "out" / "demo"
SEED = 0


def write_case(folder: Path) -> tuple[Path, Path]:
    """The synthetic CT and its candidate label map as NIfTI (1 x 1 x 2 mm voxels)."""
    folder.mkdir(parents=True, exist_ok=True)
    case = make_case(shape=(128, 128, 64), n_candidates=18, seed=SEED, spacing=(0.8, 0.8, 2.0))
    paths = []
    for name, data in (("ct.nii.gz", case.ct), ("pred.nii.gz", case.labels)):
        img = nib.Nifti1Image(data, case.affine)
        img.set_qform(case.affine, code=1)
        img.set_sform(case.affine, code=1)
        nib.save(img, folder / name)
        paths.append(folder / name)
    return paths[0], paths[1]


def table(report: dict) -> str:
    """The lesion report as aligned text columns."""
    head = ("id", "class", "voxels", "mL", "HU mean", "diam mm", "ratio %", "decision")
    rows = [
        (
            str(x["id"]),
            x["class"].removeprefix("pancreatic_"),
            str(x["voxels"]),
            f"{x['volume_ml']:.2f}",
            f"{x['hu_mean']:.0f}",
            f"{x['longest_diameter_mm']:.1f}",
            "-" if x["volume_ratio_percent"] is None else f"{x['volume_ratio_percent']:.1f}",
            x["decision"],
        )
        for x in report["lesions"]
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(
            c.rjust(w) if i in (0, 2, 3, 4, 5, 6) else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [head, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def main() -> int:
    ct, pred = write_case(OUT)
    command = Path(sys.executable).parent / "eanno-postproc"
    args = [str(command), "refine", "--ct", str(ct), "--pred", str(pred), "--out", str(OUT / "refined.nii.gz"),
            "--report", str(OUT / "report.json"), "--removed", str(OUT / "removed.nii.gz")]  # fmt: skip
    print("$ eanno-postproc refine --ct out/demo/ct.nii.gz --pred out/demo/pred.nii.gz \\\n"
          "    --out out/demo/refined.nii.gz --report out/demo/report.json --removed out/demo/removed.nii.gz")  # fmt: skip
    done = subprocess.run(args, check=False)
    if done.returncode != 0:
        return done.returncode
    report = json.loads((OUT / "report.json").read_text())
    print()
    print(table(report))
    s = report["summary"]
    print(f"\n{s['candidates']} candidates: {s['kept']} kept, {s['removed']} removed, {s['relabelled']} relabelled "
          f"(pancreas {s['pancreas_voxels']} voxels). Files in {OUT.relative_to(OUT.parents[1])}/")  # fmt: skip
    labels = np.asanyarray(nib.load(OUT / "refined.nii.gz").dataobj)
    print("refined classes present:", sorted(int(c) for c in np.unique(labels)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
