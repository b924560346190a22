"""Request compression, measured: is it worth compressing the int16 volume the client sends?

For the synthetic 512 x 512 x 300 phantom (eanno_client.loadtest.synthetic_payload) and the real CT in
../shared/data (when present), prints the raw size, then for zlib level 1 and level 6 (gRPC's gzip/deflate
uses zlib; level 6 is zlib's default) the compressed size, the time to compress here and to decompress
(the server's cost), and the whole transfer at 100 Mbit/s and 1 Gbit/s: raw vs compress + send + inflate.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from pathlib import Path

import numpy as np

from eanno_client.loadtest import synthetic_payload
from eanno_client.orientation import to_canonical
from eanno_client.readers import read_volume

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "ct-real-small" / "example_ct_sm.nii.gz"
LINKS = {"100Mbit": 100e6 / 8, "1Gbit": 1e9 / 8}  # bytes per second


def measure(name: str, volume: np.ndarray) -> dict:
    """Sizes and times of each zlib level for one int16 volume."""
    raw = np.ascontiguousarray(volume, dtype=np.int16).tobytes()
    out: dict = {"case": name, "shape": list(volume.shape), "raw_bytes": len(raw), "levels": {}}
    for level in (1, 6):
        t0 = time.perf_counter()
        packed = zlib.compress(raw, level)
        t_c = time.perf_counter() - t0
        t0 = time.perf_counter()
        zlib.decompress(packed)
        t_d = time.perf_counter() - t0
        row = {
            "bytes": len(packed),
            "ratio": round(len(raw) / len(packed), 3),
            "compress_s": round(t_c, 3),
            "decompress_s": round(t_d, 3),
        }
        for link, bps in LINKS.items():
            row[f"raw_{link}_s"] = round(len(raw) / bps, 3)
            row[f"compressed_{link}_s"] = round(t_c + len(packed) / bps + t_d, 3)
        out["levels"][str(level)] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 300])
    args = ap.parse_args()
    cases = [measure("phantom", synthetic_payload(tuple(args.shape), (0.8, 0.8, 2.0)).volume)]
    if REAL.exists():
        vol = read_volume(REAL)
        cases.append(measure("real CT " + REAL.name, to_canonical(vol.data, vol.affine).data))
    else:
        print(f"{REAL} absent: phantom only")
    for c in cases:
        print(f"{c['case']} {c['shape']}: {c['raw_bytes'] / 1e6:.1f} MB raw")
        for level, r in c["levels"].items():
            print(
                f"  zlib {level}: {r['bytes'] / 1e6:.1f} MB ({r['ratio']:.2f}x), compress {r['compress_s']:.2f} s, "
                f"inflate {r['decompress_s']:.2f} s; 100 Mbit/s: raw {r['raw_100Mbit_s']:.2f} s vs "
                f"{r['compressed_100Mbit_s']:.2f} s; 1 Gbit/s: raw {r['raw_1Gbit_s']:.2f} s vs {r['compressed_1Gbit_s']:.2f} s"
            )
    print(json.dumps(cases))


if __name__ == "__main__":
    main()
