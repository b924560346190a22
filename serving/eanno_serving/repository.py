"""One description of the served model -> a complete Triton model repository for each place it runs.

The configs are built as Triton ModelConfig protobuf messages (tritonclient ships the types) and written
as text, so a config the server would reject cannot be written. Flavors (DESIGN.md, "Where it runs"):
tensorrt (NGC image, GPU), onnxruntime (NGC image without TensorRT), python-onnxruntime (the PyPI wheel).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from eanno_contracts.meta import DEFAULT_THETA
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from eanno_serving.window import WindowSpec

Flavor = Literal["tensorrt", "onnxruntime", "python-onnxruntime"]
FLAVORS: tuple[Flavor, ...] = ("tensorrt", "onnxruntime", "python-onnxruntime")
ENSEMBLE, WINDOW, SEGMENTER, POSTPROC = "eanno_annotate", "eanno_window", "eanno_segmenter", "eanno_postproc"
# Python-backend model sources (modules of this package) copied to <model>/1/model.py.
RULES_FILE = "rules.yaml"  # a site's post-processing rules, in the eanno_postproc model folder
MODEL_SOURCES = {WINDOW: "window_model.py", POSTPROC: "postproc_model.py", SEGMENTER: "segmenter_model.py"}
# Patches per BLS request from the window, and the segmenter's dynamic-batching limit, per flavor.
# On a GPU a batch fills the device (the plan's profiles are 1/4/8). On the CPU flavor batching buys
# nothing (one ONNX Runtime thread per instance: 79.6-81.0 ms CPU per 48^3 patch at batch 1, 2, 4, 8)
# and executions of up to 8 patches balance badly over the two instances when another job takes a core,
# so the window sends single patches and the batcher merges at most two: 0.87-0.94x the served time on
# the loaded machine, the same when quiet (serving/benchmarks/README.md, issue 15).
WINDOW_BATCH: dict[Flavor, int] = {"tensorrt": 4, "onnxruntime": 4, "python-onnxruntime": 1}
MAX_BATCH: dict[Flavor, int] = {"tensorrt": 8, "onnxruntime": 8, "python-onnxruntime": 2}


@dataclass(frozen=True)
class ServingSpec:
    """Everything the repository carries: the model's META, its name/version, and serving knobs."""

    meta: Mapping[str, Any]
    name: str = "eanno-small-phantom"
    version: str = "1"
    max_batch: int | None = None  # the segmenter's dynamic-batching limit; None: per flavor (MAX_BATCH)
    window_batch: int | None = (
        None  # patches per BLS request from the window; None: per flavor (WINDOW_BATCH)
    )
    in_flight: int = 4  # BLS requests the window keeps in flight
    max_voxels: int = 512 * 512 * 1024  # larger volumes are refused per request (memory)
    probs_dtype: str = "TYPE_FP16"  # full-resolution probabilities refine reads; see serving/README.md
    cpu_instances: int = 2  # python-onnxruntime segmenter instances (each runs on cores / instances threads)
    ort_threads: int = 0  # ONNX Runtime intra-op threads per instance there; 0: cores / instances
    # Admission (eanno_serving.admission): the window's instances work on at most admission_slots full-size
    # equivalents (admission_unit_voxels each) at once and start none while the machine has less than
    # admission_reserve_mb available; beyond that a request is refused "server busy" (UNAVAILABLE, retried).
    window_instances: int = 2
    admission_slots: int = 2
    admission_unit_voxels: int = 512 * 512 * 300
    admission_reserve_mb: int = 1024
    extra: Mapping[str, str] = field(default_factory=dict)
    rules_text: str | None = None  # a site's rules file (YAML/JSON), written to eanno_postproc/rules.yaml
    rules_source: str = ""  # where it came from (its file name), reported with every answer

    def __post_init__(self) -> None:
        WindowSpec.from_meta(self.meta)  # validate early, with a message naming the bad entry
        if self.cpu_instances < 1 or self.ort_threads < 0:
            raise ValueError(
                f"cpu_instances must be >= 1 and ort_threads >= 0, got {self.cpu_instances}, {self.ort_threads}"
            )
        if (
            min(self.window_instances, self.admission_slots, self.admission_unit_voxels) < 1
            or self.admission_reserve_mb < 0
        ):
            raise ValueError(
                "window_instances, admission_slots and admission_unit_voxels must be >= 1 and "
                f"admission_reserve_mb >= 0, got {self.window_instances}, {self.admission_slots}, "
                f"{self.admission_unit_voxels}, {self.admission_reserve_mb}"
            )
        for flavor in FLAVORS:
            window_batch, max_batch = self.batching(flavor)
            if not 1 <= window_batch <= max_batch:
                raise ValueError(
                    f"window_batch {window_batch} must be in [1, max_batch={max_batch}] ({flavor})"
                )

    def batching(self, flavor: Flavor) -> tuple[int, int]:
        """(window_batch, max_batch) for `flavor`: the values given, else the flavor's defaults."""
        window_batch = WINDOW_BATCH[flavor] if self.window_batch is None else self.window_batch
        max_batch = MAX_BATCH[flavor] if self.max_batch is None else self.max_batch
        return window_batch, max_batch

    @property
    def theta(self) -> float:
        """The operating threshold the model was calibrated at."""
        return float(self.meta.get("theta", DEFAULT_THETA))

    def parameters(self) -> dict[str, str]:
        """Config parameters every model of the ensemble carries (the server reports them to clients)."""
        spacing = [float(s) for s in self.meta["spacing"]]
        return {
            "model_name": self.name,
            "model_version": self.version,
            "theta": repr(self.theta),
            "spacing": json.dumps(spacing),
            "max_voxels": str(self.max_voxels),
            "meta": json.dumps(self.meta, sort_keys=True),
            **self.rules_parameters(),
            **self.extra,
        }

    def rules_parameters(self) -> dict[str, str]:
        """rules_file/source/sha256 when the repository carries a site's rules (else none: the defaults)."""
        if self.rules_text is None:
            return {}
        return {
            "rules_file": RULES_FILE,
            "rules_source": self.rules_source or RULES_FILE,
            "rules_sha256": hashlib.sha256(self.rules_text.encode()).hexdigest(),
        }


def _io(name: str, dtype: str, dims: list[int], optional: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "data_type": dtype, "dims": dims}
    return {**d, "optional": True} if optional else d


def _params(d: Mapping[str, str]) -> dict[str, Any]:
    return {k: {"string_value": str(v)} for k, v in d.items()}


def model_configs(spec: ServingSpec, flavor: Flavor) -> dict[str, model_config_pb2.ModelConfig]:
    """The four ModelConfig messages (ensemble, window, segmenter, postproc) for one flavor."""
    if flavor not in FLAVORS:
        raise ValueError(f"unknown flavor {flavor!r}; choose one of {', '.join(FLAVORS)}")
    w = WindowSpec.from_meta(spec.meta)
    nc, patch = w.num_classes, list(w.patch_size)
    window_batch, max_batch = spec.batching(flavor)
    params = spec.parameters()
    vol, spc = _io("volume", "TYPE_INT16", [-1, -1, -1]), _io("spacing", "TYPE_FP32", [3])
    optional = [
        _io("affine", "TYPE_FP32", [4, 4], True),
        _io("threshold", "TYPE_FP32", [1], True),
        _io("rules", "TYPE_STRING", [1], True),
    ]
    # Region first (eanno_serving.region): labels_z and removed_z are zlib streams of the maps of `box`
    # (start, stop on the input grid); removed_outside: rows (class, start0, stop0, start1, stop1, start2,
    # stop2) of removed candidates outside it, drawn from the model grid. The client writes full-size files.
    outputs = [
        _io("labels_z", "TYPE_STRING", [1]),
        _io("removed_z", "TYPE_STRING", [1]),
        _io("report", "TYPE_STRING", [1]),
    ]
    box, blocks = _io("box", "TYPE_INT64", [2, 3]), _io("removed_outside", "TYPE_INT32", [-1, 7])
    region = _io("region", "TYPE_STRING", [1])
    # Window -> postproc: model-grid probabilities around the box (postproc resamples inside the box).
    coarse = _io("coarse", "TYPE_FP32", [nc, -1, -1, -1])
    window_params = {
        **params,
        "segmenter": SEGMENTER,
        "window_batch": str(window_batch),
        "probs_dtype": spec.probs_dtype,
        "in_flight": str(spec.in_flight),
        "admission_slots": str(spec.admission_slots),
        "admission_unit_voxels": str(spec.admission_unit_voxels),
        "admission_reserve_mb": str(spec.admission_reserve_mb),
    }
    seg: dict[str, Any] = {
        "name": SEGMENTER,
        "max_batch_size": max_batch,
        "input": [_io("image", "TYPE_FP32", [1, *patch])],
        "output": [_io("probs", "TYPE_FP32", [nc, *patch])],
        "dynamic_batching": {"max_queue_delay_microseconds": 2000},
        "parameters": _params(params),
    }
    if flavor == "tensorrt":
        seg |= {
            "platform": "tensorrt_plan",
            "default_model_filename": "model.plan",
            "instance_group": [{"kind": "KIND_GPU", "count": 1}],
        }
    elif flavor == "onnxruntime":
        seg |= {
            "platform": "onnxruntime_onnx",
            "default_model_filename": "model.onnx",
            "instance_group": [{"kind": "KIND_AUTO", "count": 1}],
        }
    else:
        seg |= {
            "backend": "python",
            "instance_group": [{"kind": "KIND_CPU", "count": spec.cpu_instances}],
            "parameters": _params({**params, "ort_threads": str(spec.ort_threads), "ort_spinning": "0"}),
        }
    dicts: dict[str, dict[str, Any]] = {
        ENSEMBLE: {
            "name": ENSEMBLE,
            "platform": "ensemble",
            "max_batch_size": 0,
            "input": [vol, spc, *optional],
            "output": [*outputs, box, blocks],
            "parameters": _params(params),
            "ensemble_scheduling": {
                "step": [
                    {
                        "model_name": WINDOW,
                        "model_version": -1,
                        "input_map": {k: k for k in ("volume", "spacing", "affine", "threshold", "rules")},
                        "output_map": {
                            k: k for k in ("coarse", "volume_box", "box", "removed_outside", "region")
                        },
                    },
                    {
                        "model_name": POSTPROC,
                        "model_version": -1,
                        "input_map": {
                            "volume": "volume_box",
                            **{
                                k: k
                                for k in (
                                    "spacing",
                                    "coarse",
                                    "box",
                                    "region",
                                    "affine",
                                    "threshold",
                                    "rules",
                                )
                            },
                        },
                        "output_map": {k: k for k in ("labels_z", "removed_z", "report")},
                    },
                ]
            },
        },
        WINDOW: {
            "name": WINDOW,
            "backend": "python",
            "max_batch_size": 0,
            "input": [vol, spc, *optional],
            "output": [coarse, _io("volume_box", "TYPE_INT16", [-1, -1, -1]), box, blocks, region],
            "instance_group": [{"kind": "KIND_CPU", "count": spec.window_instances}],
            "parameters": _params(window_params),
        },
        SEGMENTER: seg,
        POSTPROC: {
            "name": POSTPROC,
            "backend": "python",
            "max_batch_size": 0,
            "input": [vol, spc, coarse, box, region, *optional],
            "output": outputs,
            "instance_group": [{"kind": "KIND_CPU", "count": 2}],
            "parameters": _params(params),
        },
    }
    return {name: json_format.ParseDict(d, model_config_pb2.ModelConfig()) for name, d in dicts.items()}


def config_text(config: model_config_pb2.ModelConfig) -> str:
    """A ModelConfig as config.pbtxt text."""
    return text_format.MessageToString(config)


def write_repository(
    spec: ServingSpec,
    flavor: Flavor,
    out: str | os.PathLike[str],
    model_file: str | os.PathLike[str],
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """Write the repository for `flavor` to `out` (atomically: built beside it, then renamed).

    model_file is the segmenter: an ONNX file, or for the tensorrt flavor a plan or the ONNX file the
    plan is built from on the target GPU at deploy time (kept as eanno_segmenter/model.onnx, outside the
    version folder; docker/entrypoint.sh builds 1/model.plan from it). An existing `out` is replaced.
    """
    out, model_file = Path(out), Path(model_file)
    if not model_file.is_file():
        raise FileNotFoundError(f"segmenter model file not found: {model_file}")
    wants = (".plan", ".onnx") if flavor == "tensorrt" else (".onnx",)
    if model_file.suffix not in wants:
        raise ValueError(f"flavor {flavor} needs a {' or '.join(wants)} segmenter, got {model_file}")
    configs = model_configs(spec, flavor)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, config in configs.items():
            (tmp / name / "1").mkdir(parents=True)
            (tmp / name / "config.pbtxt").write_text(config_text(config))
            if name in MODEL_SOURCES and (name != SEGMENTER or flavor == "python-onnxruntime"):
                src = resources.files("eanno_serving.triton_models") / MODEL_SOURCES[name]
                (tmp / name / "1" / "model.py").write_text(src.read_text())
        deploy_time_plan = flavor == "tensorrt" and model_file.suffix == ".onnx"
        target = tmp / SEGMENTER / ("model.onnx" if deploy_time_plan else f"1/model{model_file.suffix}")
        shutil.copyfile(model_file, target)
        if spec.rules_text is not None:  # beside config.pbtxt: Triton reads only the version folders
            (tmp / POSTPROC / RULES_FILE).write_text(spec.rules_text)
        for rel, text in (extra_files or {}).items():  # top-level files: Triton only reads folders
            (tmp / rel).write_text(text)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
