"""GPU throughput of the full-size TransUNet (decoder-only and encoder-only): fp32 / fp16 / bf16, batch 1/4/8.

Standalone: needs torch only (the model code is imported from eanno_training when installed, otherwise
pass --src pointing at the repository's training/ folder). Prints one line per setting and, last, one
JSON object. Baseline in the same run: fp32 at batch 1.

    python training/benchmarks/gpu_bench.py --patch 128 --iters 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> None:
    """Benchmark every (variant, dtype, batch) and print figures, last line JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--variants", default="decoder,encoder")
    ap.add_argument("--batches", default="1,4,8")
    ap.add_argument("--dtypes", default="fp32,fp16,bf16")
    ap.add_argument("--src", default=None, help="path of training/ when eanno_training is not installed")
    args = ap.parse_args()
    if args.src:
        sys.path.insert(0, args.src)
    import torch
    from eanno_training.models import build_model, count_parameters, full_config

    if not torch.cuda.is_available():
        raise SystemExit("gpu_bench.py needs a CUDA device")
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    dtypes = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
    rows = []
    for variant in args.variants.split(","):
        cfg = full_config(variant).replace(patch_size=(args.patch,) * 3)  # type: ignore[arg-type]
        model = build_model(cfg).to(dev).eval()
        params = count_parameters(model)
        for name in args.dtypes.split(","):
            for b in (int(v) for v in args.batches.split(",")):
                x = torch.randn(b, 1, *cfg.patch_size, device=dev)
                ctx = (
                    torch.autocast("cuda", dtype=dtypes[name])
                    if dtypes[name]
                    else torch.autocast("cuda", enabled=False)
                )
                try:
                    with torch.inference_mode(), ctx:
                        for _ in range(2):
                            model(x)
                        torch.cuda.synchronize()
                        t = time.perf_counter()
                        for _ in range(args.iters):
                            model(x)
                        torch.cuda.synchronize()
                    pps = b * args.iters / (time.perf_counter() - t)
                    mem = torch.cuda.max_memory_allocated() / 2**30
                except torch.OutOfMemoryError:
                    pps, mem = float("nan"), float("nan")
                torch.cuda.reset_peak_memory_stats()
                row = {
                    "variant": variant,
                    "params": params,
                    "dtype": name,
                    "batch": b,
                    "patches_per_s": round(pps, 2),
                    "peak_gib": round(mem, 2),
                }
                rows.append(row)
                print(
                    f"{variant:8s} {params / 1e6:6.1f} M  {name}  batch {b}: {pps:8.2f} patches/s  peak {mem:.1f} GiB",
                    flush=True,
                )
        del model
        torch.cuda.empty_cache()
    base = {r["variant"]: r["patches_per_s"] for r in rows if r["dtype"] == "fp32" and r["batch"] == 1}
    for r in rows:
        r["vs_fp32_b1"] = (
            round(r["patches_per_s"] / base[r["variant"]], 2) if base.get(r["variant"]) else None
        )
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(),
                "patch": args.patch,
                "torch": torch.__version__,
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
