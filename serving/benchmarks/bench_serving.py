"""make bench-serving: a 512 x 512 x 300 phantom through the local Triton server vs in-process (issue 4 item 6).

The volume is a training-like phantom (eanno_training's generator, seed 0, two lesions, RAS order) so the
shipped model finds a pancreas of realistic size and the region-first path is exercised as on a real scan;
`--phantom simple` keeps this script's own ellipses (`phantom()`, also used by the memory benchmarks).

Baseline, same machine, same run: the torch predictor + refine in one process (eanno_export.inprocess,
run as a subprocess because this folder may not import training). Served: the python-onnxruntime
repository of the same checkpoint on the wheel's tritonserver, one gRPC client per concurrency slot.
These machines are noisy (the same run varies by 20-40 % from minute to minute), so the paths are timed
in interleaved rounds after a full-size warm-up of each, and the medians are compared:
overhead = median(served) / median(in-process) - 1 at concurrency 1. Last line: one JSON object.

On a CPU the two paths also differ in runtime (torch eager vs ONNX Runtime), which can dwarf the serving
cost itself; so a third leg runs the same ONNX file with ONNX Runtime and the same numpy window in this
process (no Triton), and `overhead_same_runtime` = served / that - 1 isolates Triton's own cost
(gRPC, shared memory, BLS, the ensemble hand-offs) together with what the server's instances win back.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from eanno_postproc import load_rules, refine
from eanno_serving.annotate import annotate
from eanno_serving.cores import usable_cores
from eanno_serving.default import default_repository
from eanno_serving.handoff import box_probs, handoff
from eanno_serving.local import LocalServer, free_ports
from eanno_serving.onnx_session import onnx_meta, open_session
from eanno_serving.smoke import annotate_remote, connect
from eanno_serving.window import SlidingWindow, WindowSpec


def phantom(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A deterministic abdomen-like int16 volume: body ellipse, organs, a pancreas-like bright band, a lesion."""
    rng = np.random.default_rng(seed)
    i, j, k = (np.linspace(-1, 1, n, dtype=np.float32) for n in shape)
    I, J = np.meshgrid(i, j, indexing="ij")  # noqa: E741 - image axes
    ct = np.full(shape, -1000, np.int16)
    body = (I / 0.85) ** 2 + (J / 0.65) ** 2 < 1
    for z in range(shape[2]):
        s = ct[:, :, z]
        s[body] = 40
        s[((I - 0.3) / 0.25) ** 2 + ((J + 0.1) / 0.2) ** 2 < 1] = 60  # liver-like
        s[((I + 0.05) / 0.3) ** 2 + ((J - 0.05) / 0.07) ** 2 < 1 - k[z] ** 2] = 110  # pancreas-like
        s[((I + 0.1) / 0.05) ** 2 + ((J - 0.05) / 0.04) ** 2 < 1 - (k[z] / 0.3) ** 2] = 30  # lesion-like
    return (ct + rng.normal(0, 12, shape).astype(np.int16)).astype(np.int16)


def training_phantom(
    out: Path, seed: int, shape: tuple[int, ...], spacing: tuple[float, ...]
) -> dict[str, object]:
    """eanno_training's phantom (seed, shape, spacing; RAS order) saved to `out`; returns its summary.

    A subprocess (eanno_export.bench_phantom) because this folder may not import training.
    """
    cmd = [sys.executable, "-m", "eanno_export.bench_phantom", str(out), "--seed", str(seed)]
    cmd += ["--shape", *map(str, shape), "--spacing", *map(str, spacing)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"could not generate the phantom ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class TorchBaseline:
    """The torch predictor + refine in a subprocess that runs one timed round per request."""

    def __init__(
        self, volume_path: Path, spacing: tuple[float, ...], labels_path: Path, checkpoint: Path | None
    ) -> None:
        cmd = [
            sys.executable,
            "-m",
            "eanno_export.inprocess",
            str(volume_path),
            "--spacing",
            *map(str, spacing),
            "--out",
            str(labels_path),
            "--rounds-from-stdin",
            *(["--checkpoint", str(checkpoint)] if checkpoint else []),
        ]
        # stderr to a file, not a pipe: a pipe nobody reads fills up and would block the child for good.
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True
        )
        self._read()  # {"ready": true}: model loaded, warmed up at full size

    def _read(self) -> dict:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            self.proc.wait(timeout=60)
            self.stderr.seek(0)
            sys.exit(f"in-process baseline failed:\n{self.stderr.read()[-3000:]}")
        return json.loads(line)

    def round(self) -> dict:
        """One timed predict + refine: {"seconds", "predict_seconds", "refine_seconds", "threads"}."""
        self.proc.stdin.write("run\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(timeout=60)
        self.stderr.close()


class OnnxBaseline:
    """ONNX Runtime + the numpy window + refine in this process (no Triton)."""

    def __init__(self, onnx_path: Path, volume: np.ndarray, spacing: tuple[float, ...]) -> None:
        self.session, _ = open_session(onnx_path)
        self.meta = onnx_meta(self.session)
        self.spec = WindowSpec.from_meta(self.meta)
        self.volume, self.spacing = volume, spacing
        self.round()  # an untimed full-size round, as the other paths get

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(["probs"], {"image": batch})[0]

    def round(self) -> tuple[float, np.ndarray]:
        """Seconds and labels of one window + refine (full grid), and the region-first stages timed apart."""
        t0 = time.perf_counter()
        sw = SlidingWindow(self.volume, self.spacing, self.spec)
        for starts, batch in sw.batches(4):
            sw.add(starts, np.asarray(self._infer(batch), dtype=np.float32))
        t1 = time.perf_counter()
        probs = sw.result(np.float16)
        t2 = time.perf_counter()
        theta, affine = float(self.meta["theta"]), np.diag([*self.spacing, 1.0])
        labels = refine(self.volume, probs=probs, theta=theta, affine=affine).labels
        t3 = time.perf_counter()
        del probs
        h = handoff(sw, self.volume, np.float16, theta, load_rules(None), affine)
        t4 = time.perf_counter()
        model = {"name": "bench", "version": "", "theta": theta, "spacing": self.spec.spacing}
        probs = box_probs(h.coarse, h.box, h.region) if h.volume.size else None
        annotate(h.volume, np.asarray(self.spacing), probs, model, affine=affine, box=h.box, outside=h.region)
        t5 = time.perf_counter()
        self.handoff_bytes = (
            h.coarse.nbytes + h.volume.nbytes + h.box.nbytes + h.blocks.nbytes + len(h.region_bytes()[0])
        )
        self.stages = {
            "window_result_full": t2 - t1,
            "postproc_full": t3 - t2,
            "window_result": t4 - t3,
            "postproc": t5 - t4,
        }
        return t3 - t0, labels


def wire_figures(volume: np.ndarray, served, handoff_bytes: int) -> dict:
    """Bytes each way and the shared memory one request's Python-backend tensors take (region first).

    shm_peak_bytes: every tensor that crosses a Python model's shared memory for one request, counted as
    if all were alive at once (an upper bound): the volume into the window; the window's hand-off (the
    model-grid probabilities around the box, the box's CT, blocks, region report) out of it and again into
    post-processing; the answer out of post-processing.
    """
    box = served.box
    box_voxels = int(np.prod(np.maximum(box[1] - box[0], 0)))
    shm = volume.nbytes + 2 * handoff_bytes + served.response_bytes
    return {
        "request_bytes": int(volume.nbytes + 4 * 3),
        "response_bytes": int(served.response_bytes),
        "shm_peak_bytes": int(shm),
        "handoff_bytes": int(handoff_bytes),
        "box": box.tolist(),
        "box_fraction": box_voxels / volume.size,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 300])
    ap.add_argument("--spacing", type=float, nargs=3, default=[0.8, 0.8, 1.0])
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument(
        "--rounds", type=int, default=3, help="interleaved timed rounds of each path (median taken)"
    )
    ap.add_argument("--no-same-runtime", action="store_true", help="skip the in-process ONNX Runtime leg")
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped small phantom model")
    ap.add_argument(
        "--phantom",
        choices=["training", "simple"],
        default="training",
        help="training: eanno_training's phantom generator (what the model was trained on; default); "
        "simple: this script's own ellipses (where the model finds little pancreas)",
    )
    ap.add_argument("--seed", type=int, default=0, help="the phantom's seed")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    shape, spacing = tuple(args.shape), tuple(args.spacing)
    times: dict[str, list[float]] = {"inprocess": [], "onnx": [], "served": []}
    stages: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="eanno-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if args.phantom == "training":
            about = training_phantom(tmp / "volume.npy", args.seed, shape, spacing)
            volume = np.load(tmp / "volume.npy")
        else:
            volume, about = phantom(shape, args.seed), {"seed": args.seed}
            np.save(tmp / "volume.npy", volume)
        print(
            f"{args.phantom} phantom {shape} spacing {spacing} ({json.dumps(about)}); {sys.platform}, "
            f"python {sys.version.split()[0]}, {usable_cores()} cores; {args.rounds} interleaved rounds",
            flush=True,
        )
        torch_leg = TorchBaseline(tmp / "volume.npy", spacing, tmp / "labels.npy", args.checkpoint)
        grpc, http, metrics = free_ports()
        repo = default_repository(tmp / "run", args.checkpoint)
        onnx_leg = (
            None
            if args.no_same_runtime
            else OnnxBaseline(repo / "eanno_segmenter" / "1" / "model.onnx", volume, spacing)
        )
        with LocalServer(
            repo, grpc_port=grpc, http_port=http, metrics_port=metrics, run_dir=tmp / "run"
        ) as server:
            client = connect(server.urls["grpc"])
            # Warm-up at full size, two requests at once so that every instance (two of each Python model)
            # has loaded its session and grown its shared-memory pool, as on a server that has been running.
            with ThreadPoolExecutor(2) as pool:
                list(
                    pool.map(
                        lambda cl: annotate_remote(cl, volume, spacing),
                        [client, connect(server.urls["grpc"])],
                    )
                )
            served = None
            for r in range(args.rounds):
                legs = ["inprocess", "onnx", "served"] if r % 2 == 0 else ["served", "onnx", "inprocess"]
                for leg in legs:
                    if leg == "inprocess":
                        res = torch_leg.round()
                        times["inprocess"].append(res["seconds"])
                        print(
                            f"round {r + 1}: in-process torch: predict {res['predict_seconds']:.2f} s + refine "
                            f"{res['refine_seconds']:.2f} s = {res['seconds']:.2f} s ({res['threads']} threads)",
                            flush=True,
                        )
                    elif leg == "onnx" and onnx_leg is not None:
                        sec, onnx_labels = onnx_leg.round()
                        times["onnx"].append(sec)
                        for k, v in onnx_leg.stages.items():
                            stages.setdefault(k, []).append(v)
                        print(
                            f"round {r + 1}: stages "
                            + ", ".join(f"{k} {v:.2f} s" for k, v in onnx_leg.stages.items()),
                            flush=True,
                        )
                        print(
                            f"round {r + 1}: in-process ONNX Runtime + numpy window + refine: {sec:.2f} s",
                            flush=True,
                        )
                    elif leg == "served":
                        t0 = time.perf_counter()
                        served = annotate_remote(client, volume, spacing)
                        times["served"].append(time.perf_counter() - t0)
                        print(
                            f"round {r + 1}: served (concurrency 1): {times['served'][-1]:.2f} s", flush=True
                        )
            torch_leg.close()
            ref = np.load(tmp / "labels.npy")
            assert served is not None
            differ = float(np.mean(served.labels != ref))
            print(
                f"labels differing, served vs torch in-process: {differ:.5%}"
                + (
                    ""
                    if onnx_leg is None
                    else f"; ONNX Runtime in-process vs torch: {float(np.mean(onnx_labels != ref)):.5%}"
                ),
                flush=True,
            )
            wire = wire_figures(volume, served, getattr(onnx_leg, "handoff_bytes", 0))
            del onnx_leg
            print(
                f"wire: request {wire['request_bytes'] / 1e6:.1f} MB, answer {wire['response_bytes'] / 1e6:.3f} MB; "
                f"shared memory per request {wire['shm_peak_bytes'] / 1e9:.3f} GB (tensors the Python models "
                f"exchange); box {wire['box_fraction']:.1%} of the volume",
                flush=True,
            )
            served_s = statistics.median(times["served"])
            throughput = {"1": 1 / served_s}
            for c in args.concurrency:
                if c == 1:  # the timed single requests above are concurrency 1
                    continue
                clients = [connect(server.urls["grpc"]) for _ in range(c)]
                t0 = time.perf_counter()
                with ThreadPoolExecutor(c) as pool:
                    results = list(pool.map(lambda cl: annotate_remote(cl, volume, spacing), clients))
                wall = time.perf_counter() - t0
                assert all(np.array_equal(r.labels, served.labels) for r in results), (
                    "concurrent answers differ"
                )
                throughput[str(c)] = c / wall
                print(f"concurrency {c}: {c} volumes in {wall:.2f} s = {c / wall:.4f} volumes/s", flush=True)
    inproc_s = statistics.median(times["inprocess"])
    overhead = served_s / inproc_s - 1
    onnx_s = statistics.median(times["onnx"]) if times["onnx"] else None
    same = None if onnx_s is None else served_s / onnx_s - 1
    print(
        f"medians: in-process torch {inproc_s:.2f} s, served {served_s:.2f} s"
        + ("" if onnx_s is None else f", in-process ONNX Runtime {onnx_s:.2f} s")
    )
    # issue 15's target: region first makes the served path at most 0.7x the full-grid reference
    print(
        f"overhead {overhead:+.1%} vs torch in-process (target <= -30%: {'met' if overhead <= -0.30 else 'NOT met'})"
        + ("" if same is None else f"; {same:+.1%} vs the same runtime in-process")
    )
    print(
        json.dumps(
            {
                "inprocess_seconds": round(inproc_s, 3),
                "served_seconds": round(served_s, 3),
                "overhead": round(overhead, 4),
                "throughput_by_concurrency": throughput,
                "inprocess_onnx_seconds": None if onnx_s is None else round(onnx_s, 3),
                "overhead_same_runtime": None if same is None else round(same, 4),
                "rounds": {k: [round(v, 3) for v in vs] for k, vs in times.items()},
                "labels_differing_fraction": differ,
                "phantom": {"kind": args.phantom, **about},
                "shape": list(shape),
                "spacing": list(spacing),
                **wire,
                **{f"{k}_seconds": round(statistics.median(v), 3) for k, v in stages.items()},
                "stage_rounds": {k: [round(x, 3) for x in v] for k, v in stages.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
