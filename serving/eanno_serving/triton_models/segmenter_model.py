"""eanno_segmenter (python-onnxruntime flavor): the ONNX network in ONNX Runtime, dynamically batched."""

import logging
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from eanno_serving.backend import model_start
from eanno_serving.cores import usable_cores
from eanno_serving.onnx_session import open_session

log = logging.getLogger("eanno_segmenter")


class TritonPythonModel:
    """Concatenate the batched requests, run the session once, split the answer back per request."""

    def initialize(self, args):
        config, params = model_start(args)  # also: no stub outlives its server
        path = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        # Several instances share the cores: each gets its share of threads (0 = cores / instances), and
        # none busy-waits, or it would steal the CPU the window and post-processing need.
        instances = sum(int(g.get("count", 1)) for g in config.get("instance_group", [])) or 1
        threads = int(params.get("ort_threads", "0")) or max(1, usable_cores() // instances)
        self.session, self.providers = open_session(
            path, threads=threads, spinning=params.get("ort_spinning") == "1"
        )
        pb_utils.Logger.log_info(
            f"eanno_segmenter: ONNX Runtime providers {self.providers}, {threads} threads, for {path}"
        )
        out = pb_utils.get_output_config_by_name(config, "probs")
        self.out_dtype = pb_utils.triton_string_to_numpy(out["data_type"])
        self.out_dims = [int(d) for d in out["dims"]]

    def execute(self, requests):
        images = [pb_utils.get_input_tensor_by_name(r, "image").as_numpy() for r in requests]
        try:
            probs = self.session.run(
                ["probs"], {"image": np.concatenate(images).astype(np.float32, copy=False)}
            )[0]
        except Exception as e:  # the whole batch failed in the runtime: every request gets the error
            log.exception("eanno_segmenter failed")
            return [
                pb_utils.InferenceResponse(error=pb_utils.TritonError(f"eanno_segmenter: {e}"))
                for _ in requests
            ]
        responses, i = [], 0
        for image in images:
            part = probs[i : i + len(image)].astype(self.out_dtype, copy=False)
            i += len(image)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("probs", part)]))
        return responses
