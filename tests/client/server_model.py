"""A Triton repository whose segmenter is an exact, known function of HU, for end-to-end geometry tests.

The segmenter is a 1x1x1 convolution plus softmax built with onnx.helper: on normalised x = HU / 100 the
class logits are background 0, PDAC 40x - 6, pancreas 80x - 32 and -30 for the rest, so soft tissue at
100 HU is pancreas and a sphere at 30 HU is PDAC. Whatever the server labels as PDAC is where the sphere
is: a lesion placed at a known world position must come back at that world position.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from eanno_contracts.labels import CLASS_NAMES

CLASSES = list(CLASS_NAMES)
META = {
    "classes": CLASSES,
    "spacing": [1.5, 1.5, 2.0],
    "patch_size": [32, 32, 16],
    "intensity": {"clip": [-1000, 1000], "mean": 0.0, "std": 100.0},
    "theta": 0.003,
    "step": 0.5,
    "train": {"command": "tests/client/server_model.py (fixed weights, not trained)", "seed": 0},
}
TISSUE_HU, LESION_HU = 100, 30


def hu_band_onnx(path: Path, meta: dict = META) -> Path:
    """Write the HU-band segmenter (input 'image' [B,1,p0,p1,p2] -> output 'probs' [B,6,...])."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    slopes = np.array([0, 80, 0, 40, 0, 0], np.float32)
    biases = np.array([0, -32, -30, -6, -30, -30], np.float32)
    p = meta["patch_size"]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w", "b"], ["logits"], kernel_shape=[1, 1, 1]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        ],
        "hu_band",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, *p])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 6, *p])],
        initializer=[
            numpy_helper.from_array(slopes.reshape(6, 1, 1, 1, 1), "w"),
            numpy_helper.from_array(biases, "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    entry = model.metadata_props.add()
    entry.key, entry.value = "eanno", json.dumps(meta)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def hu_band_repository(folder: Path, meta: dict = META) -> Path:
    """The python-onnxruntime repository of the HU-band segmenter."""
    from eanno_serving.repository import ServingSpec, write_repository

    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = hu_band_onnx(folder / "model.onnx", meta)
    return write_repository(
        ServingSpec(meta, name="hu-band", version="test"), "python-onnxruntime", folder / "repo", onnx_path
    )


# Two spheres (centre world mm RAS, radius mm), off-centre so that any flip or axis swap moves them.
LESIONS = [((-12.0, 9.0, 6.0), 7.0), ((14.0, -10.0, -9.0), 5.0)]


@contextmanager
def hu_band_server(folder: Path) -> Iterator[Any]:
    """A running LocalServer of the HU-band repository in `folder`; it must leave no shared memory behind."""
    from eanno_serving.local import LocalServer, free_ports

    grpc, http, metrics = free_ports()
    server = LocalServer(
        hu_band_repository(folder),
        grpc_port=grpc,
        http_port=http,
        metrics_port=metrics,
        run_dir=folder / "run",
    )
    with server:
        prefix = server.state.shm_prefix
        yield server
    assert server.leftover_shm(prefix) == []


def affine_for(
    codes: str, spacing_ras=(1.6, 1.4, 2.5), shape_ras=(44, 40, 22), centre=(2.0, -1.0, 0.5)
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """An affine storing the same RAS grid with axes along `codes` (e.g. 'PLI'), and the stored shape."""
    a = np.eye(4)
    shape = []
    for axis, code in enumerate(codes):
        world = "RLAPSI".index(code) // 2
        a[:3, axis] = 0.0
        a[world, axis] = spacing_ras[world] * (1.0 if code in "RAS" else -1.0)
        shape.append(shape_ras[world])
    # place the grid so that its centre voxel sits at `centre`
    mid = (np.array(shape) - 1) / 2
    a[:3, 3] = np.asarray(centre) - a[:3, :3] @ mid
    return a, tuple(shape)


def lesion_phantom(codes: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hu int16, affine, lesion mask) of the two-sphere phantom stored with axes along `codes`."""
    affine, shape = affine_for(codes)
    idx = np.indices(shape).reshape(3, -1)
    world = (affine[:3, :3] @ idx + affine[:3, 3:4]).T
    mask = np.zeros(len(world), bool)
    for centre, radius in LESIONS:
        mask |= np.linalg.norm(world - np.asarray(centre), axis=1) <= radius
    mask = mask.reshape(shape)
    hu = np.where(mask, LESION_HU, TISSUE_HU).astype(np.int16)
    return hu, affine, mask


if __name__ == "__main__":  # writes a repository for bench_client.py --repository (see client/README.md)
    import argparse

    ap = argparse.ArgumentParser(description="write the HU-band segmenter's Triton repository to DIR/repo")
    ap.add_argument("dir", type=Path)
    ap.add_argument("--spacing", type=float, nargs=3, default=META["spacing"], help="model spacing (mm)")
    ap.add_argument("--patch", type=int, nargs=3, default=META["patch_size"], help="patch size (voxels)")
    args = ap.parse_args()
    print(hu_band_repository(args.dir, {**META, "spacing": args.spacing, "patch_size": args.patch}))
