"""`make demo`: the whole path on this machine.

Starts the local Triton server with the shipped model, annotates two generated phantoms (and the real CT
in ../shared/data where present) with eanno-client, prints each lesion found against the phantom truth,
and stops the server. The shipped model is small and trained on synthetic phantoms only: it is a
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
REAL_CT = Path(os.environ.get("EANNO_SHARED_DATA", REPO.parent / "shared" / "data")) / "ct-real-small" / "example_ct_sm.nii.gz"
PHANTOMS = {"phantom_a": (11, "LPS"), "phantom_b": (23, "RAS")}  # seed, stored orientation
OUT = REPO / "demo-output"
MAX_SHOWN = 8




def write_phantoms(folder: Path) -> dict[str, list[dict]]:
    """The demo phantoms as NIfTI files; returns each one's true lesions."""
    truth = {}
    for name, (seed, orientation) in PHANTOMS.items():
        p = generate_phantom(seed, orientation=orientation, n_lesions=2)
        nib.save(nib.Nifti1Image(p.ct, p.affine), str(folder / f"{name}.nii.gz"))
        truth[name] = p.lesions
    return truth


def compare(name: str, report: dict, truth: list[dict] | None) -> None:
    """Print each lesion the server kept, and for phantoms, the nearest true lesion."""
    kept = [x for x in report["lesions"] if x["decision"] == "kept"]
    print(f"\n{name}: {len(kept)} lesion(s) kept, {len(report['lesions']) - len(kept)} candidate(s) removed")
    shown = sorted(kept, key=lambda x: -x["volume_ml"])[:MAX_SHOWN]
    for x in shown:
        line = f"  found #{x['id']} {x['class']}, {x['volume_ml']:.2f} mL at {np.round(x['centroid_mm'], 1).tolist()} mm"
        if truth:
            t = min(truth, key=lambda t: np.linalg.norm(np.subtract(t["centre_world"], x["centroid_mm"])))
            d = np.linalg.norm(np.subtract(t["centre_world"], x["centroid_mm"]))
            line += f"; nearest truth {t['class']} {t['volume_ml']:.2f} mL, {d:.1f} mm away"
        print(line)
    if len(kept) > len(shown):
        print(f"  ... and {len(kept) - len(shown)} smaller one(s), listed in report.json")
    for t in truth or []:
        hit = any(np.linalg.norm(np.subtract(t["centre_world"], x["centroid_mm"])) < t["diameter_mm"] for x in kept)
        print(f"  truth {t['class']} {t['volume_ml']:.2f} mL at {np.round(t['centre_world'], 1).tolist()} mm: "
              f"{'found' if hit else 'MISSED'}")


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(description="EfficientAnno end to end on this machine.")
    ap.add_argument("--repository", type=Path, help="serve this model repository instead of the shipped model")
    args = ap.parse_args()
    print("EfficientAnno demo. The shipped model is small and trained on synthetic phantoms only: it shows the "
          "system working end to end and is not a clinical model.")
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
        start = [str(BIN / "eanno-server"), "start", "--grpc-port", str(grpc), "--http-port", str(http),
                 "--metrics-port", str(metrics), "--run-dir", str(run_dir)]
        start += ["--repository", str(args.repository)] if args.repository else []
        if subprocess.run(start).returncode != 0:
            print("the local server did not start (see the message above)", file=sys.stderr)
            return 1
        try:
            url = f"127.0.0.1:{grpc}"
            subprocess.run([str(BIN / "eanno-client"), "health", "--url", url], check=False)
            rc = subprocess.run([str(BIN / "eanno-client"), "annotate", *map(str, cases), "--out", str(OUT),
                                 "--url", url]).returncode
        finally:
            subprocess.run([str(BIN / "eanno-server"), "stop", "--run-dir", str(run_dir)], check=False)
        for case in cases:
            name = case.name.removesuffix(".nii.gz")
            report_path = OUT / name / "report.json"
            if report_path.is_file():
                compare(name, json.loads(report_path.read_text()), truth.get(name))
    print(f"\nOutputs (labels, AbdomenAtlas masks, report, viewer files, preview) in {OUT}/<case>/; "
          f"open one with the commands in {OUT}/<case>/open_in_viewers.sh")
    return rc


if __name__ == "__main__":
    sys.exit(main())
