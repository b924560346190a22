"""Serving fixtures: a tiny segmenter obeying the network contract, exported to ONNX by code, and its META."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from eanno_contracts.geometry import gaussian_weights, pad_widths, target_shape, tile_starts
from eanno_contracts.labels import CLASS_NAMES

CLASSES = list(CLASS_NAMES)
TINY_META = {
    "classes": CLASSES,
    "spacing": [1.5, 1.5, 2.0],
    "patch_size": [24, 24, 16],
    "intensity": {"clip": [-1000, 1000], "mean": 40.0, "std": 200.0},
    "theta": 0.003,
    "step": 0.5,
    "train": {"command": "tests/serving/conftest.py tiny_net", "seed": 0},
}


def tiny_net():
    """A hand-set 2-layer 3D conv net with softmax obeying the segmenter contract ([B,1,*p] -> [B,6,*p]).

    Layer 1 smooths (3x3x3 mean) and cuts the intensity into ReLU ramps; layer 2 (1x1x1) makes the logits:
    bright tissue (phantom organ, ~140 HU) -> pancreas, dark blobs (~-100 HU) -> PDAC candidates, else
    background; so refine sees kept lesions inside the organ and removed ones outside it.
    """
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(
        torch.nn.Conv3d(1, 3, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv3d(3, 6, 1),
        torch.nn.Softmax(dim=1),
    )
    with torch.no_grad():
        net[0].weight.fill_(1 / 27)
        net[0].bias.copy_(
            torch.tensor([0.5, 1.0, -0.25])
        )  # ramps: x > -0.5, x > -1, x > 0.25 (x = (HU-40)/200)
        net[2].weight.zero_()
        net[2].weight[1, 2] = 20.0  # pancreas
        net[2].weight[3, 1], net[2].weight[3, 0] = 30.0, -60.0  # PDAC: dark but not air
        net[2].bias.copy_(torch.tensor([0.0, -2.0, -12.0, -10.0, -12.0, -12.0]))
    return net.eval()


def export_tiny_onnx(path: Path, meta: dict = TINY_META) -> Path:
    """Export tiny_net to ONNX (opset 18, dynamic batch, META under metadata_props 'eanno')."""
    torch = pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    net = tiny_net()
    dummy = torch.zeros((1, 1, *meta["patch_size"]))
    torch.onnx.export(
        net,
        (dummy,),
        str(path),
        input_names=["image"],
        output_names=["probs"],
        opset_version=18,
        dynamic_axes={"image": {0: "batch"}, "probs": {0: "batch"}},
        dynamo=False,
    )
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "eanno", json.dumps(meta)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny segmenter as model.onnx in a temporary folder."""
    return export_tiny_onnx(tmp_path_factory.mktemp("tiny") / "model.onnx")


def phantom(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """A deterministic int16 CT-like phantom: soft tissue, a bright organ, a dark lesion in it and one outside.

    No air inside the field: the tiny net's partial-volume band at air boundaries would make every body
    surface a lesion candidate.
    """
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(np.float32)
    centre = np.array(shape, np.float32)[:, None, None, None] / 2
    ct = np.full(shape, 40.0)
    organ = np.sqrt((((grid - centre * 0.9) / 9.0) ** 2).sum(0)) < 1.0
    ct[organ] = 140.0
    blob = np.sqrt((((grid - centre * 0.9 - 2) / 4.0) ** 2).sum(0)) < 1.0
    ct[blob] = -100.0  # a lesion inside the organ
    outside = np.sqrt((((grid - centre * 1.45) / 3.5) ** 2).sum(0)) < 1.0
    ct[outside & ~organ] = -100.0  # a lesion-like blob away from it
    return (ct + rng.normal(0, 15, shape)).astype(np.int16)


def torch_reference(volume: np.ndarray, spacing, meta, net) -> np.ndarray:
    """CONTRACTS.md steps 1-8 written directly with torch (interpolate align_corners=True, F.pad).

    The geometry is eanno_contracts' (its properties: tests/contracts); resampling, padding, tiling and
    stitching are torch's, independent of the numpy window under test.
    """
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    lo, hi = meta["intensity"]["clip"]
    x = torch.from_numpy(np.clip(volume.astype(np.float32), lo, hi))[None, None]
    shape = volume.shape
    tgt = list(target_shape(shape, spacing, meta["spacing"]))
    if list(tgt) != list(shape):
        x = F.interpolate(x, size=tgt, mode="trilinear", align_corners=True)
    x = (x - meta["intensity"]["mean"]) / meta["intensity"]["std"]
    patch = meta["patch_size"]
    pads = pad_widths(tgt, patch)
    flat = [v for pair in reversed(pads) for v in pair]
    air = (lo - meta["intensity"]["mean"]) / meta["intensity"]["std"]
    x = F.pad(x, flat, value=air)
    n = x.shape[2:]
    axes_starts = [tile_starts(na, pa, meta["step"]) for na, pa in zip(n, patch, strict=True)]
    w = torch.from_numpy(gaussian_weights(patch))
    acc = torch.zeros((6, *n))
    wsum = torch.zeros(n)
    for s in itertools.product(*axes_starts):
        sl = tuple(slice(a, a + p) for a, p in zip(s, patch, strict=True))
        probs = torch.from_numpy(net(x[(0, slice(None), *sl)][None].numpy()))[0]
        acc[(slice(None), *sl)] += probs * w
        wsum[sl] += w
    probs = (acc / wsum)[(slice(None), *(slice(b, b + t) for (b, _), t in zip(pads, tgt, strict=True)))]
    if list(tgt) != list(shape):
        probs = F.interpolate(probs[None], size=list(shape), mode="trilinear", align_corners=True)[0]
    return probs.numpy()


def inprocess_window(volume: np.ndarray, spacing):
    """The served window's state for a volume, filled in-process by the tiny net (what eanno_window holds)."""
    torch = pytest.importorskip("torch")
    from eanno_serving.window import SlidingWindow, WindowSpec

    net = tiny_net()
    sw = SlidingWindow(volume, spacing, WindowSpec.from_meta(TINY_META))
    for starts, batch in sw.batches(4):
        with torch.inference_mode():
            sw.add(starts, net(torch.from_numpy(batch)).numpy())
    return sw
