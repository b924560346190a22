"""What every Python-backend model of ours does first, and how it reads an optional input tensor.

Only the model.py files import this, inside Triton's stub (triton_python_backend_utils exists only there).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from eanno_serving.lifeline import exit_with_parent


def model_start(args: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Watch the server (no stub outlives it: eanno_serving.lifeline); the model's config and its parameters."""
    exit_with_parent()
    config = json.loads(args["model_config"])
    return config, {k: v["string_value"] for k, v in config.get("parameters", {}).items()}


def optional_input(request: Any, name: str) -> Any:
    """The request's input `name` as a numpy array, or None when the client left it out."""
    import triton_python_backend_utils as pb_utils

    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


def error_response(error: Exception, model: str) -> Any:
    """The response for a request that failed: whose fault it was decides the code the client sees.

    Busy (over capacity) -> UNAVAILABLE, which the client retries with back-off; RequestError (the client's
    input) -> INVALID_ARG, not retried, the reason shown; anything else is logged with its traceback here.
    """
    import triton_python_backend_utils as pb_utils

    from eanno_serving.admission import Busy
    from eanno_serving.requests import RequestError

    log = logging.getLogger(model)
    if isinstance(error, Busy):
        log.warning("%s: %s", model, error)
        return pb_utils.InferenceResponse(
            error=pb_utils.TritonError(str(error), pb_utils.TritonError.UNAVAILABLE)
        )
    if isinstance(error, RequestError):
        return pb_utils.InferenceResponse(
            error=pb_utils.TritonError(str(error), pb_utils.TritonError.INVALID_ARG)
        )
    log.error("%s failed", model, exc_info=error)
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(f"{model}: {error}"))
