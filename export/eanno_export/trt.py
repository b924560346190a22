"""ONNX -> TensorRT plan with the TensorRT Python API: the one builder `eanno-export trt` and the docker
entrypoint both call. Optimisation profile over the batch axis (min/opt/max from `batches`)."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from eanno_export.errors import ExportError, TensorRTUnavailable

log = logging.getLogger(__name__)
NO_TENSORRT = "TensorRT is not installed here: build the plan inside the Triton image, see docker/README.md"


def tensorrt_version() -> str | None:
    """The importable TensorRT's version, or None."""
    try:
        import tensorrt as trt  # noqa: PLC0415 - optional, present only in the NGC image / GPU hosts
    except ImportError:
        return None
    return str(trt.__version__)


LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/local/tensorrt/lib", "/opt/tensorrt/lib", "/usr/lib64")


def tensorrt_library_version(dirs: Sequence[str] | None = None) -> str | None:
    """TensorRT's version where only its libraries are (the Triton image): $TRT_VERSION or libnvinfer.so.X.Y.Z."""
    if os.environ.get("TRT_VERSION"):
        return os.environ["TRT_VERSION"]
    search = (
        list(dirs) if dirs is not None else [*LIBRARY_DIRS, *os.environ.get("LD_LIBRARY_PATH", "").split(":")]
    )
    found = sorted(
        {
            m.group(1)
            for d in search
            if d and Path(d).is_dir()
            for f in Path(d).glob("libnvinfer.so.*")
            if (m := re.fullmatch(r"libnvinfer\.so\.(\d+\.\d+\.\d+)", f.name))
        }
    )
    return found[-1] if found else None


def build_plan(
    onnx_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    fp16: bool = False,
    batches: Sequence[int] = (1, 4, 8),
    timing_cache: str | os.PathLike[str] | None = None,
    workspace_gib: float = 4.0,
) -> Path:
    """Build a serialized engine for the ONNX segmenter; written atomically to `out`."""
    try:
        import tensorrt as trt  # noqa: PLC0415
    except ImportError as e:
        raise TensorRTUnavailable(NO_TENSORRT) from e
    lo, opt, hi = (
        sorted(int(b) for b in batches) if len(batches) == 3 else (min(batches), max(batches), max(batches))
    )
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT >= 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {onnx_path}: {errors}")
    image = network.get_input(0)
    patch = tuple(image.shape)[1:]
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * 2**30))
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    profile.set_shape(image.name, (lo, *patch), (opt, *patch), (hi, *patch))
    config.add_optimization_profile(profile)
    cache_path = Path(timing_cache) if timing_cache else None
    cache = config.create_timing_cache(
        cache_path.read_bytes() if cache_path and cache_path.is_file() else b""
    )
    config.set_timing_cache(cache, ignore_mismatch=False)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise ExportError(f"TensorRT failed to build an engine from {onnx_path} (see the log above)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(engine)
    os.replace(tmp, out)
    if cache_path:
        cache_path.write_bytes(memoryview(config.get_timing_cache().serialize()))
    log.info("built %s (TensorRT %s, fp16=%s, batch %d/%d/%d)", out, trt.__version__, fp16, lo, opt, hi)
    return out
