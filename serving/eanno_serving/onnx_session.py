"""ONNX Runtime sessions with providers picked by what the host has (TensorRT, CUDA, then CPU)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import onnxruntime as ort

log = logging.getLogger(__name__)
PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def pick_providers(available: list[str] | None = None) -> list[str]:
    """The providers to use, best first, among those this ONNX Runtime build has."""
    have = ort.get_available_providers() if available is None else available
    chosen = [p for p in PREFERENCE if p in have]
    return chosen or ["CPUExecutionProvider"]


def open_session(
    path: str | os.PathLike[str],
    providers: list[str] | None = None,
    *,
    threads: int = 0,
    spinning: bool = True,
) -> tuple[Any, list[str]]:
    """An InferenceSession on `path` and the providers it actually got (logged).

    threads: ONNX Runtime's intra-op threads (0: its default, one per core). spinning=False stops idle
    worker threads from busy-waiting between runs, which a session sharing its cores needs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(0, int(threads))
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    session = ort.InferenceSession(str(path), options, providers=providers or pick_providers())
    got = session.get_providers()
    log.info("ONNX Runtime providers for %s: %s", path, got)
    return session, got


def onnx_meta(session: Any) -> dict[str, Any]:
    """The model META stored as JSON under metadata_props key "eanno" (CONTRACTS.md)."""
    props = session.get_modelmeta().custom_metadata_map
    if "eanno" not in props:
        raise ValueError("the ONNX model carries no 'eanno' metadata (export it with eanno-export onnx)")
    return json.loads(props["eanno"])
