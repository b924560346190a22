"""Helpers for the fault, limit, privacy and soak tests: a repository with a small voxel limit, servers on
free ports, client subprocesses, and checks that an output folder holds no partial files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from eanno_serving.local import free_ports

from .server_model import META, hu_band_onnx

MAX_VOXELS = 300_000  # the window model's limit in these tests: small, so "too large" is cheap to test


def limited_repository(folder: Path, max_voxels: int = MAX_VOXELS, **spec: Any) -> Path:
    """The HU-band segmenter's python-onnxruntime repository with a small max_voxels (and other ServingSpec knobs)."""
    from eanno_serving.repository import ServingSpec, write_repository

    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = hu_band_onnx(folder / "model.onnx", META)
    return write_repository(
        ServingSpec(META, name="hu-band", version="test", max_voxels=max_voxels, **spec),
        "python-onnxruntime",
        folder / "repo",
        onnx_path,
    )


def start_server(repository: Path, run_dir: Path, ports: list[int] | None = None, **kw: object):
    """A started LocalServer on `ports` (free ones when None)."""
    from eanno_serving.local import LocalServer

    grpc, http, metrics = ports or free_ports()
    return LocalServer(
        repository, grpc_port=grpc, http_port=http, metrics_port=metrics, run_dir=run_dir, **kw
    ).start()


def client_cmd(*args: object) -> list[str]:
    """eanno-client run as its own process (real signals, real exit codes)."""
    return [sys.executable, "-m", "eanno_client.cli", *map(str, args)]


def client_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def run_client(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        client_cmd(*args), capture_output=True, text=True, env=client_env(), timeout=timeout, check=False
    )


def partial_files(out: Path) -> list[Path]:
    """Temporary files of atomic writes left in `out` (there must be none)."""
    return sorted(p for p in out.rglob("*") if ".part" in p.name)


def check_outputs_whole(out: Path) -> int:
    """Every labels.nii.gz under out loads fully; returns how many."""
    found = sorted(out.rglob("labels.nii.gz"))
    for path in found:
        assert np.asanyarray(nib.load(str(path)).dataobj).size > 0
    return len(found)
