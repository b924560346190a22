"""`make demo`: the whole path on this machine.

Starts the local Triton server with the shipped model, annotates two generated phantoms (and the real CT
in ../shared/data where present) with eanno-client, prints per phantom the true lesions found and missed,
the false regions kept and what each post-processing rule removed, and for every case the report's flags
(a real CT must be flagged: the shipped model is phantom-only), and stops the server. The shipped model is small and trained on synthetic phantoms only: it is a
demonstration of the system, not a clinical model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from eanno_serving.local import free_ports
from eanno_training.phantoms import generate_phantom

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REAL_CT = (
    Path(os.environ.get("EANNO_SHARED_DATA", REPO.parent / "shared" / "data"))
    / "ct-real-small"
    / "example_ct_sm.nii.gz"
)
PHANTOMS = {"phantom_a": (11, "LPS"), "phantom_b": (23, "RAS")}  # seed, stored orientation
OUT = REPO / "demo-output"
MAX_SHOWN = 5
RULES = {
    "removed_outside_pancreas": "outside the pancreas removed",
    "relabelled_volume_ratio": "volume ratio relabelled",
    "relabelled_duct": "touching the duct relabelled",
    "relabelled_contrast": "contrast relabelled",
}


def write_phantoms(folder: Path) -> dict[str, np.ndarray]:
    """The demo phantoms as NIfTI files; returns each one's true label map (on the file's grid)."""
    truth = {}
    for name, (seed, orientation) in PHANTOMS.items():
        p = generate_phantom(seed, orientation=orientation, n_lesions=2)
        nib.save(nib.Nifti1Image(p.ct, p.affine), str(folder / f"{name}.nii.gz"))
        truth[name] = p.labels
    return truth


def compare(name: str, report: dict, labels: Path, truth: np.ndarray | None) -> None:
    """Per case: true lesions found and missed, false regions kept, what each rule removed, the flags."""
    by = report["summary"]["by_decision"]
    kept = by["kept"]
    print(f"\n{name}: {kept} lesion region(s) kept of {report['summary']['candidates']} candidate(s)")
    print("  the rules: " + ", ".join(f"{RULES[k]} {by[k]}" for k in RULES))
    if truth is not None:
        from eanno_training.evaluation.matching import LESION_CLASSES, match_case

        m = match_case(np.asarray(nib.load(str(labels)).dataobj), truth)  # any overlap is a hit
        found = ", ".join(
            f"{m.hit[c]}/{m.gt[c]} {n.removeprefix('pancreatic_')}"
            for c, n in LESION_CLASSES.items()
            if m.gt[c]
        )
        print(
            f"  true lesions found {m.n_hit} of {m.n_gt} ({found or 'a normal case'}), missed {m.n_gt - m.n_hit}; "
            f"false regions kept {m.n_fp}"
        )
    flags = report.get("flags") or []
    print("  flags: " + ("; ".join(flags) if flags else "none"))
    for x in sorted((x for x in report["lesions"] if x["decision"] == "kept"), key=lambda x: -x["volume_ml"])[
        :MAX_SHOWN
    ]:
        print(
            f"    kept #{x['id']} {x['class']}, {x['volume_ml']:.2f} mL, mean {x['hu_mean']:.0f} HU, "
            f"p_max {x['prob_max']:.2f} at {np.round(x['centroid_mm'], 1).tolist()} mm"
        )


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(description="EfficientAnno end to end on this machine.")
    ap.add_argument(
        "--repository", type=Path, help="serve this model repository instead of the shipped model"
    )
    args = ap.parse_args()
    print(
        "EfficientAnno demo. The shipped model is small and trained on synthetic phantoms only: it shows the "
        "system working end to end and is not a clinical model."
    )
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="eanno-demo-") as tmp:
        inputs = Path(tmp) / "inputs"
        inputs.mkdir()
        truth = write_phantoms(inputs)
        cases = sorted(inputs.iterdir())
        if REAL_CT.is_file():
            cases.append(REAL_CT)
        else:
            print(f"(real CT not found at {REAL_CT}; annotating the phantoms only)")
        grpc, http, metrics = free_ports()
        run_dir = Path(tmp) / "server"
        start = [
            str(BIN / "eanno-server"),
            "start",
            "--grpc-port",
            str(grpc),
            "--http-port",
            str(http),
            "--metrics-port",
            str(metrics),
            "--run-dir",
            str(run_dir),
        ]
        start += ["--repository", str(args.repository)] if args.repository else []
        if subprocess.run(start).returncode != 0:
            print("the local server did not start (see the message above)", file=sys.stderr)
            return 1
        try:
            url = f"127.0.0.1:{grpc}"
            subprocess.run([str(BIN / "eanno-client"), "health", "--url", url], check=False)
            rc = subprocess.run(
                [str(BIN / "eanno-client"), "annotate", *map(str, cases), "--out", str(OUT), "--url", url]
            ).returncode
        finally:
            subprocess.run([str(BIN / "eanno-server"), "stop", "--run-dir", str(run_dir)], check=False)
        for case in cases:
            name = case.name.removesuffix(".nii.gz")
            report_path = OUT / name / "report.json"
            if report_path.is_file():
                compare(
                    name, json.loads(report_path.read_text()), OUT / name / "labels.nii.gz", truth.get(name)
                )
    print(
        f"\nOutputs (labels, AbdomenAtlas masks, report, viewer files, preview) in {OUT}/<case>/; "
        f"open one with the commands in {OUT}/<case>/open_in_viewers.sh"
    )
    return rc


if __name__ == "__main__":
    sys.exit(main())
