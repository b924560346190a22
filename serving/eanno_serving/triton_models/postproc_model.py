"""eanno_postproc: eanno_postproc.refine on the window's probabilities (through eanno_serving.annotate)."""

import json
import logging
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils
from eanno_contracts.answer import pack

from eanno_serving.annotate import annotate, site_rules
from eanno_serving.backend import error_response, model_start, optional_input
from eanno_serving.handoff import box_probs
from eanno_serving.requests import RequestError, check_spacing

log = logging.getLogger("eanno_postproc")
OPTIONAL = ("affine", "threshold", "rules")


class TritonPythonModel:
    """Threshold, the adaptive rules and the lesion report; one response per request."""

    def initialize(self, args):
        self.config, params = model_start(args)  # also: no stub outlives its server
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
                volume = optional_input(request, "volume")
                try:
                    spacing = check_spacing(optional_input(request, "spacing"))
                except ValueError as e:
                    raise RequestError(str(e)) from e
                raw = optional_input(request, "region").reshape(-1)[0]
                region = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
                box = optional_input(request, "box")
                # The box's full-resolution probabilities are made here, from the model-grid crop.
                probs = box_probs(optional_input(request, "coarse"), box, region) if volume.size else None
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
                    **{k: optional_input(request, k) for k in OPTIONAL},
                )
                outputs = [
                    pb_utils.Tensor("labels_z", np.array([pack(result.labels)], dtype=np.object_)),
                    pb_utils.Tensor("removed_z", np.array([pack(result.removed)], dtype=np.object_)),
                    pb_utils.Tensor("report", result.report_bytes()),
                ]
                responses.append(pb_utils.InferenceResponse(output_tensors=outputs))
            except Exception as e:  # one bad request must not fail the others
                responses.append(error_response(e, "eanno_postproc"))
        return responses
