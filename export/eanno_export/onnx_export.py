"""torch checkpoint -> ONNX segmenter (opset 18, dynamic batch, static patch, META), with a parity check."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from eanno_export.errors import ExportError

log = logging.getLogger(__name__)
OPSET = 18
PARITY_TOLERANCE = 1e-3  # max |p_torch - p_onnx| over all voxels and classes (issue 4)


@dataclass(frozen=True)
class Parity:
    """Max absolute probability difference between torch and ONNX Runtime, per kind of input."""

    random: float
    phantom: float

    @property
    def worst(self) -> float:
        """The larger of the two."""
        return max(self.random, self.phantom)


def _atomic_save(model: onnx.ModelProto, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_network(net: torch.nn.Module, meta: dict[str, Any], out: str | os.PathLike[str]) -> Path:
    """Export a segmenter network ([B,1,*patch] -> probs [B,C,*patch]) with META under metadata_props 'eanno'."""
    out = Path(out)
    dummy = torch.zeros((1, 1, *[int(p) for p in meta["patch_size"]]))
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        # The legacy (TorchScript) exporter: 2 s instead of 13 s for dynamo, same graph for these nets,
        # and ONNX Runtime matches torch within 1e-5 (shared/ENVIRONMENT.md).
        torch.onnx.export(
            net.eval(),
            (dummy,),
            str(raw),
            input_names=["image"],
            output_names=["probs"],
            opset_version=OPSET,
            dynamic_axes={"image": {0: "batch"}, "probs": {0: "batch"}},
            dynamo=False,
        )
        model = onnx.load(str(raw))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = "eanno", json.dumps(meta, sort_keys=True)
    onnx.checker.check_model(model, full_check=True)
    _atomic_save(model, out)
    return out


def parity_patches(meta: dict[str, Any], seed: int = 0, n: int = 2) -> dict[str, np.ndarray]:
    """Normalised inputs for the parity check: random normal patches and phantom-like (CT-valued) patches."""
    rng = np.random.default_rng(seed)
    patch = [int(p) for p in meta["patch_size"]]
    inten = meta["intensity"]
    grid = np.indices(patch).astype(np.float32)
    centre = (np.array(patch, np.float32) - 1)[:, None, None, None] / 2
    r = np.sqrt((((grid - centre) / (np.array(patch, np.float32)[:, None, None, None] / 3)) ** 2).sum(0))
    phantoms = []
    for _ in range(n):
        hu = np.where(r < 1.0, rng.uniform(20, 160), -1000.0) + rng.normal(0, 20, patch)
        hu = np.clip(hu, *inten["clip"])
        phantoms.append((hu - inten["mean"]) / inten["std"])
    return {
        "random": rng.normal(size=(n, 1, *patch)).astype(np.float32),
        "phantom": np.stack(phantoms)[:, None].astype(np.float32),
    }


def check_parity(
    net: torch.nn.Module, onnx_path: str | os.PathLike[str], meta: dict[str, Any], seed: int = 0
) -> Parity:
    """Max |torch - ONNX Runtime| of probabilities on random and phantom patches (batch of 2: dynamic batch)."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    diffs = {}
    for kind, x in parity_patches(meta, seed).items():
        with torch.inference_mode():
            ref = net.eval()(torch.from_numpy(x)).float().numpy()
        got = session.run(["probs"], {"image": x})[0]
        diffs[kind] = float(np.abs(ref - got).max())
    return Parity(**diffs)


def export_checkpoint(
    checkpoint: str | os.PathLike[str] | None, out: str | os.PathLike[str]
) -> tuple[Path, Parity, dict[str, Any]]:
    """Checkpoint (None = shipped) -> ONNX at `out`; returns the path, the parity figures and META.

    Raises ExportError when parity exceeds PARITY_TOLERANCE (the file is then removed).
    """
    from eanno_training.checkpoint import load_checkpoint  # noqa: PLC0415 - export_network needs no training code

    ckpt = load_checkpoint(checkpoint)
    net = ckpt.build("cpu")
    path = export_network(net, ckpt.meta, out)
    parity = check_parity(net, path, ckpt.meta)
    if parity.worst > PARITY_TOLERANCE:
        path.unlink(missing_ok=True)
        raise ExportError(
            f"{path}: ONNX parity failed: max |torch - onnx| = {parity.worst:.2e} > {PARITY_TOLERANCE:.0e}"
        )
    log.info("exported %s (parity random %.2e, phantom %.2e)", path, parity.random, parity.phantom)
    return path, parity, ckpt.meta
