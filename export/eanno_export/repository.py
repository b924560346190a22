"""A complete Triton model repository for one place, from a checkpoint (export + the serving writer)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, cast

import numpy as np
from eanno_postproc import load_rules
from eanno_serving.repository import Flavor, ServingSpec, write_repository
from eanno_serving.window import SlidingWindow, WindowSpec
from eanno_training.checkpoint import shipped_checkpoint_path

from eanno_export.errors import ExportError
from eanno_export.onnx_export import Parity, export_checkpoint
from eanno_export.plan_check import CHECK_PATCHES
from eanno_export.trt import build_plan, tensorrt_version

log = logging.getLogger(__name__)
SOURCE_FILE = "eanno_source.json"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def serving_code_sha256() -> str:
    """Hex SHA-256 of the code that shapes a written repository (the config writer, the Triton models)."""
    h = hashlib.sha256()
    pkg = resources.files("eanno_serving")
    for f in [pkg / "repository.py", *sorted(pkg.joinpath("triton_models").iterdir(), key=lambda p: p.name)]:
        if f.name.endswith(".py"):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def recorded_source(out: Path) -> dict[str, Any] | None:
    """What an existing repository records about its source (None when absent or unreadable)."""
    try:
        return json.loads((out / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return None


def build_repository(
    flavor: Flavor,
    out: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str] | None = None,
    *,
    plan: str | os.PathLike[str] | None = None,
    fp16: bool = False,
    reuse: bool = False,
    rules: str | os.PathLike[str] | None = None,
    capacity: Mapping[str, int] | None = None,
) -> tuple[Path, Parity | None, str]:
    """Write the repository; returns (path, parity or None when reused, how the segmenter was provided).

    rules: a site's post-processing rules file (YAML or JSON), validated here and carried by the repository;
    the post-processing model loads it and every report names it (source and hash).
    capacity: ServingSpec's window_instances / admission_* knobs (serving/README.md, "Admission").
    """
    out = Path(out)
    ckpt = Path(checkpoint) if checkpoint is not None else shipped_checkpoint_path()
    if not ckpt.is_file():
        raise ExportError(f"checkpoint not found: {ckpt}")
    rules_text = None
    if rules is not None:
        load_rules(Path(rules))  # RulesError names the file and the bad key, before anything is written
        rules_text = Path(rules).read_text(encoding="utf-8")
    # The serving code is part of the key: a repository written by older configs or models is rewritten.
    source: dict[str, Any] = {
        "checkpoint": str(ckpt.resolve()),
        "sha256": file_sha256(ckpt),
        "flavor": flavor,
        "serving_code": serving_code_sha256(),
    }
    if capacity:
        source["capacity"] = dict(sorted(capacity.items()))
    if rules_text is not None:
        source["rules_sha256"] = hashlib.sha256(rules_text.encode()).hexdigest()
    if reuse and recorded_source(out) == source:
        log.info("repository %s is up to date with %s", out, ckpt)
        return out, None, "reused"
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, parity, meta = export_checkpoint(ckpt, Path(tmp) / "model.onnx")
        model_file, how = onnx_path, "onnx"
        if flavor == "tensorrt":
            if plan is not None:
                model_file, how = Path(plan), "plan given"
            elif tensorrt_version() is not None:
                model_file, how = (
                    build_plan(onnx_path, Path(tmp) / "model.plan", fp16=fp16),
                    "plan built here",
                )
            else:
                how = "onnx kept; the plan builder (eanno-plan in docker/compose.yaml) builds the plan on the target GPU"
        spec = ServingSpec(
            meta,
            name=ckpt.stem,
            version=source["sha256"][:12],
            rules_text=rules_text,
            rules_source=Path(rules).name if rules is not None else "",
        )
        if capacity:
            spec = dataclasses.replace(
                spec, **cast(dict[str, Any], capacity)
            )  # __post_init__ checks them again
        write_repository(
            spec, flavor, out, model_file, extra_files={SOURCE_FILE: json.dumps(source, indent=1)}
        )
    if how.startswith("onnx kept"):  # the plan builder checks its plan against ONNX Runtime on these
        np.save(out / "eanno_segmenter" / CHECK_PATCHES, phantom_patches(meta))
    return out, parity, how


def phantom_patches(meta: dict[str, Any], count: int = 8, seed: int = 2027) -> np.ndarray:
    """Model-input patches cut by the serving window from a phantom: the `count` with the most structure."""
    from eanno_training.phantoms import generate_phantom  # noqa: PLC0415

    phantom = generate_phantom(seed, shape=(160, 128, 48), spacing=(1.5, 1.5, 3.0), orientation="RAS")
    window = SlidingWindow(phantom.ct, phantom.spacing, WindowSpec.from_meta(meta))
    patches = np.concatenate([batch for _, batch in window.batches(8)]).astype(np.float32)
    keep = np.sort(np.argsort([-float(p.std()) for p in patches])[:count])
    return np.ascontiguousarray(patches[keep])
