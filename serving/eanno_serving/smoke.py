"""A minimal gRPC caller of the ensemble for the server tests and the benchmark.

The real client is eanno-client (client/); this one exists so the server side can be checked on its
own, and it fails loudly on a wrong answer (empty or wrongly sized tensors, unparsable report).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
from eanno_contracts.answer import box_shape, full_size, unpack

from eanno_serving.repository import ENSEMBLE

# Passing channel_args would drop tritonclient's 2 GiB limits to gRPC's 4 MiB: set both explicitly.
MAX_MESSAGE = 2**31 - 1
CHANNEL_ARGS = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
]


@dataclass(frozen=True)
class Served:
    """The ensemble's answer for one volume."""

    labels: np.ndarray
    removed: np.ndarray
    report: dict[str, Any]
    box: np.ndarray  # (2, 3) start, stop: where labels were computed at full resolution
    response_bytes: int  # the answer's tensors as sent (compressed box maps, box, blocks, report)
    blocks_bytes: int = 0  # of which removed_outside


def connect(url: str) -> grpcclient.InferenceServerClient:
    """A gRPC client with 2 GiB message limits (volumes and label maps are large)."""
    return grpcclient.InferenceServerClient(url, channel_args=CHANNEL_ARGS)


def _tensor(name: str, array: np.ndarray, dtype: str) -> grpcclient.InferInput:
    t = grpcclient.InferInput(name, list(array.shape), dtype)
    t.set_data_from_numpy(array)
    return t


def annotate_remote(
    client: grpcclient.InferenceServerClient,
    volume: np.ndarray,
    spacing: Any,
    *,
    affine: np.ndarray | None = None,
    threshold: float | None = None,
    rules: dict[str, Any] | None = None,
    model: str = ENSEMBLE,
) -> Served:
    """Send one int16 volume (canonical order) to the ensemble; check and return its outputs."""
    inputs = [
        _tensor("volume", np.ascontiguousarray(volume, dtype=np.int16), "INT16"),
        _tensor("spacing", np.asarray(spacing, dtype=np.float32).reshape(3), "FP32"),
    ]
    if affine is not None:
        inputs.append(_tensor("affine", np.asarray(affine, dtype=np.float32), "FP32"))
    if threshold is not None:
        inputs.append(_tensor("threshold", np.array([threshold], dtype=np.float32), "FP32"))
    if rules is not None:
        inputs.append(_tensor("rules", np.array([json.dumps(rules).encode()], dtype=np.object_), "BYTES"))
    result = client.infer(model, inputs)
    box, blocks = result.as_numpy("box"), result.as_numpy("removed_outside")
    if box is None or box.shape != (2, 3) or blocks is None or blocks.ndim != 2 or blocks.shape[1] != 7:
        raise AssertionError(f"box / removed_outside missing or malformed: {box!r}")
    packed = {}
    for name in ("labels_z", "removed_z", "report"):
        out = result.as_numpy(name)
        if out is None or out.size != 1:
            raise AssertionError(f"{name}: expected one BYTES element, got {out!r}")
        packed[name] = out.reshape(-1)[0]
    shape = box_shape(box)
    labels = full_size(volume.shape, box, unpack(packed["labels_z"], shape))
    removed = full_size(volume.shape, box, unpack(packed["removed_z"], shape), blocks)
    report = json.loads(packed["report"])
    if "lesions" not in report or "model" not in report:
        raise AssertionError(f"report lacks lesions/model: {sorted(report)}")
    size = box.nbytes + blocks.nbytes + sum(len(v) for v in packed.values())
    return Served(labels, removed, report, box, size, blocks.nbytes)
