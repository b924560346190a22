"""make bench-client: the client's own time per case and a pipelined batch against the server's time.

For a 512 x 512 x 300 int16 case (synthetic, from a seed) it measures
  server time  = one annotate request from memory (send, server work, receive), median of --repeats;
  client time  = read + reorient + write every output of one case (the request excluded);
  batch        = eanno-client's pipelined batch of --cases cases, against cases x server time.
Target: batch <= 1.15 x (cases x server time). The last line printed is one JSON object.

--client-only measures the client's part alone (no server; labels from a local HU threshold).
Uses a running server (--url) or starts `eanno-server start` (shipped model, or --repository DIR) on
free ports in a temporary run folder and stops it afterwards. The benchmark imports only eanno_client
(the server is a separate process), like a workstation would.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from bench_server import local_server

from eanno_client.batch import BatchOptions, run_batch
from eanno_client.cases import expand_inputs
from eanno_client.connection import Connection, ConnectionConfig
from eanno_client.loadtest import synthetic_payload
from eanno_client.orientation import to_canonical
from eanno_client.outputs import CasePaths, OutputOptions, write_case
from eanno_client.readers import read_volume

TARGET = 1.15
LINKS = {"100Mbit": 100e6 / 8, "1Gbit": 1e9 / 8}  # bytes per second


def write_inputs(
    work: Path, shape: tuple[int, int, int], spacing: tuple[float, float, float], cases: int
) -> Path:
    """The synthetic case as work/inputs/case0..N.nii.gz (stored LPS, as most scanners export); returns case0."""
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    src = work / "inputs" / "case0.nii.gz"
    src.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(synthetic_payload(shape, spacing).volume, affine), str(src))
    for i in range(1, cases):
        shutil.copyfile(src, src.with_name(f"case{i}.nii.gz"))
    return src


def read_and_reorient(src: Path) -> tuple[Any, Any, float, float]:
    """(volume, canonical volume, read seconds, reorient seconds) for one input, as the client does it."""
    t0 = time.perf_counter()
    volume = read_volume(src)
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    can = to_canonical(volume.data, volume.affine)
    return volume, can, t_read, time.perf_counter() - t0


def local_labels(data: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, removed) of the right shape without a server.

    "pancreas": what a region-first server answers - an organ-sized ellipsoid of pancreas with a lesion in
    it, and a removed candidate beside it, zero elsewhere. "body": the former benchmark's map, a HU
    threshold over the whole body (noisy labels everywhere, which no server returns).
    """
    if kind == "body":
        labels = np.where(data > 40, 1, 0).astype(np.uint8)
        labels[(data > 0) & (data <= 40)] = 3
        return labels, np.zeros_like(labels)
    grid = np.ogrid[tuple(slice(0, n) for n in data.shape)]
    centre = [n / 2 for n in data.shape]

    def ball(c: list[float], r: list[float]) -> np.ndarray:
        return sum(((g - ci) / ri) ** 2 for g, ci, ri in zip(grid, c, r, strict=True)) < 1

    labels = np.zeros(data.shape, np.uint8)
    labels[ball(centre, [n * 0.15 for n in data.shape])] = 1
    labels[ball(centre, [n * 0.04 for n in data.shape])] = 3
    removed = np.zeros(data.shape, np.uint8)
    removed[ball([n * 0.3 for n in data.shape], [n * 0.03 for n in data.shape])] = 4
    return labels, removed


def import_once() -> float:
    """Seconds to import what writing the first case imports (matplotlib for the preview): paid once per
    process, not per case, so it is timed apart."""
    t0 = time.perf_counter()
    import matplotlib.figure  # noqa: F401
    import matplotlib.lines  # noqa: F401

    return time.perf_counter() - t0


def measure_client_only(
    work: Path, shape: tuple[int, int, int], spacing: tuple[float, float, float], kind: str = "pancreas"
) -> dict:
    """The client's own time without a server (labels made locally, see local_labels)."""
    volume, can, t_read, t_reorient = read_and_reorient(write_inputs(work, shape, spacing, 1))
    labels, removed = local_labels(can.data, kind)
    t_import = import_once()
    t0 = time.perf_counter()
    write_case(
        CasePaths(work / "single"), "case0", volume, can, labels, removed, {"lesions": []}, OutputOptions()
    )
    t_write = time.perf_counter() - t0
    return {
        "shape": list(shape),
        "spacing_mm": list(spacing),
        "mode": "client-only",
        "labels": kind,
        "client_read_s": round(t_read, 3),
        "client_reorient_s": round(t_reorient, 3),
        "client_write_s": round(t_write, 3),
        "client_s": round(t_read + t_reorient + t_write, 3),
        "imports_once_s": round(t_import, 3),
    }


def measure(
    url: str,
    work: Path,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    cases: int,
    concurrency: int,
    repeats: int,
) -> dict:
    """Every figure of the benchmark against the server at url."""
    src = write_inputs(work, shape, spacing, cases)
    options = OutputOptions()
    with Connection(ConnectionConfig(url=url, timeout_s=3600)) as conn:
        volume, can, t_read, t_reorient = read_and_reorient(src)
        conn.annotate(can.data, can.spacing, can.affine)  # warm-up
        requests = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            labels, removed, report = conn.annotate(can.data, can.spacing, can.affine)
            requests.append(time.perf_counter() - t0)
        t_server = statistics.median(requests)
        wire = dict(conn.last_wire)
        t_import = import_once()
        t0 = time.perf_counter()
        write_case(CasePaths(work / "single"), "case0", volume, can, labels, removed, report, options)
        t_write = time.perf_counter() - t0
        batch_cases = expand_inputs([src.parent])
        t0 = time.perf_counter()
        results = run_batch(
            conn, batch_cases, BatchOptions(out=work / "batch", outputs=options, concurrency=concurrency)
        )
        t_batch = time.perf_counter() - t0
    failed = [r.error for r in results if r.status != "done"]
    if failed:
        raise SystemExit(f"batch cases failed: {failed[:3]}")
    client = t_read + t_reorient + t_write
    return {
        "shape": list(shape),
        "spacing_mm": list(spacing),
        "cases": cases,
        "concurrency": concurrency,
        "server_s": round(t_server, 3),
        "server_runs_s": [round(t, 3) for t in requests],
        "client_read_s": round(t_read, 3),
        "client_reorient_s": round(t_reorient, 3),
        "client_write_s": round(t_write, 3),
        "client_s": round(client, 3),
        "batch_s": round(t_batch, 3),
        "baseline_s": round(cases * t_server, 3),
        "ratio": round(t_batch / (cases * t_server), 3),
        "target": TARGET,
        **wire,
        "imports_once_s": round(t_import, 3),
        **{
            f"wire_{name}_s": round((wire["request_bytes"] + wire["response_bytes"]) / bps, 3)
            for name, bps in LINKS.items()
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a running server (default: start eanno-server on free ports)")
    ap.add_argument(
        "--repository", type=Path, help="model repository for the started server (default: shipped)"
    )
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 300])
    ap.add_argument("--spacing", type=float, nargs=3, default=[0.8, 0.8, 2.0])
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--client-only",
        action="store_true",
        help="only the client's own time, no server (labels made locally, see --labels)",
    )
    ap.add_argument(
        "--labels",
        choices=("pancreas", "body"),
        default="pancreas",
        help="--client-only label map: 'pancreas' (organ-sized, as a region-first server answers; "
        "default) or 'body' (the former noisy whole-body HU threshold)",
    )
    args = ap.parse_args()
    # SIGTERM (timeout, kill) unwinds like Ctrl-C, so the started server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.client_only:
        with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
            r = measure_client_only(Path(tmp), tuple(args.shape), tuple(args.spacing), args.labels)
        print(f"case {r['shape']} int16, spacing {r['spacing_mm']} mm, no server, labels: {r['labels']}")
        print(
            f"client's own time per case: {r['client_s']:.2f} s = read {r['client_read_s']:.2f} + reorient "
            f"{r['client_reorient_s']:.2f} + write all outputs {r['client_write_s']:.2f} "
            f"(+ {r['imports_once_s']:.2f} s of imports once per process)"
        )
        print(json.dumps(r))
        return
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        work = Path(tmp)
        with ExitStack() as stack:
            url = args.url or stack.enter_context(local_server(args.repository, work / "run"))[0]
            r = measure(
                url, work, tuple(args.shape), tuple(args.spacing), args.cases, args.concurrency, args.repeats
            )
    r["meets_target"] = r["ratio"] <= TARGET
    print(f"case {r['shape']} int16, spacing {r['spacing_mm']} mm, server {url}")
    print(f"server time per case (request from memory): {r['server_s']:.2f} s (runs {r['server_runs_s']})")
    print(
        f"wire per case: request {r['request_bytes'] / 1e6:.2f} MB, answer {r['response_bytes'] / 1e6:.3f} MB; "
        f"at 100 Mbit/s {r['wire_100Mbit_s']:.2f} s, at 1 Gbit/s {r['wire_1Gbit_s']:.2f} s"
    )
    print(
        f"client's own time per case: {r['client_s']:.2f} s = read {r['client_read_s']:.2f} + reorient "
        f"{r['client_reorient_s']:.2f} + write all outputs {r['client_write_s']:.2f}"
    )
    print(
        f"batch of {r['cases']} (concurrency {r['concurrency']}): {r['batch_s']:.2f} s vs {r['cases']} x server "
        f"= {r['baseline_s']:.2f} s -> ratio {r['ratio']:.3f} (target <= {TARGET})"
    )
    print(json.dumps(r))


if __name__ == "__main__":
    main()
