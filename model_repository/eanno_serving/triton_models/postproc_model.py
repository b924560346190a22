"""eanno_postproc: eanno_postproc.refine on the window's probabilities (through eanno_serving.annotate)."""

import json
import logging
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils
from eanno_contracts.answer import pack

from eanno_serving.annotate import annotate, site_rules
from eanno_serving.handoff import box_probs
from eanno_serving.lifeline import exit_with_parent
from eanno_serving.requests import RequestError
from eanno_serving.window import check_spacing

log = logging.getLogger("eanno_postproc")
OPTIONAL = ("affine", "threshold", "rules")


def _optional(request, name):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


class TritonPythonModel:
    """Threshold, the adaptive rules and the lesion report; one response per request."""

    def initialize(self, args):
        exit_with_parent()  # no stub outlives a server that died hard (eanno_serving.lifeline)
        self.config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in self.config.get("parameters", {}).items()}
        self.model = {
            "name": params["model_name"],
            "version": params["model_version"],
            "theta": float(params["theta"]),
            "spacing": json.loads(params["spacing"]),
        }
        self.max_voxels = int(params.get("max_voxels", 2**31))
        self.meta = json.loads(params["meta"]) if "meta" in params else None  # flags: is it phantom-only?
        # A site's rules file written by `eanno-export repository --rules` (else the packaged defaults).
        self.rules, self.rules_info = site_rules(Path(args["model_repository"]), params)
        pb_utils.Logger.log_info(
            f"eanno_postproc: rules {self.rules_info['source']} (sha256 {self.rules_info['sha256'][:12]})"
        )

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                # Region first: `volume` is the CT inside the box the window chose (empty: no pancreas).
                volume = _optional(request, "volume")
                try:
                    spacing = check_spacing(_optional(request, "spacing"))
                except ValueError as e:
                    raise RequestError(str(e)) from e
                raw = _optional(request, "region").reshape(-1)[0]
                region = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
                box = _optional(request, "box")
                # The box's full-resolution probabilities are made here, from the model-grid crop.
                probs = box_probs(_optional(request, "coarse"), box, region) if volume.size else None
                result = annotate(
                    volume,
                    spacing,
                    probs,
                    self.model,
                    base_rules=self.rules,
                    rules_info=self.rules_info,
                    meta=self.meta,
                    box=box,
                    outside=region,
                    **{k: _optional(request, k) for k in OPTIONAL},
                )
                outputs = [
                    pb_utils.Tensor("labels_z", np.array([pack(result.labels)], dtype=np.object_)),
                    pb_utils.Tensor("removed_z", np.array([pack(result.removed)], dtype=np.object_)),
                    pb_utils.Tensor("report", result.report_bytes()),
                ]
                responses.append(pb_utils.InferenceResponse(output_tensors=outputs))
            except (
                RequestError
            ) as e:  # the client's fault: INVALID_ARG, so it is not retried and shows the reason
                responses.append(
                    pb_utils.InferenceResponse(
                        error=pb_utils.TritonError(str(e), pb_utils.TritonError.INVALID_ARG)
                    )
                )
            except Exception as e:  # one bad request must not fail the others
                log.exception("eanno_postproc failed")
                responses.append(
                    pb_utils.InferenceResponse(error=pb_utils.TritonError(f"eanno_postproc: {e}"))
                )
        return responses
