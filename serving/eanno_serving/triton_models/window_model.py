"""eanno_window: the sliding window (eanno_serving.window) calling eanno_segmenter through async BLS."""

import asyncio
import json
import logging

import triton_python_backend_utils as pb_utils
from eanno_postproc import load_rules

from eanno_serving.admission import Admission, default_folder
from eanno_serving.annotate import request_rules
from eanno_serving.backend import error_response, model_start, optional_input
from eanno_serving.handoff import handoff
from eanno_serving.requests import parse_affine, parse_threshold, parse_volume_request
from eanno_serving.window import SlidingWindow, WindowSpec

log = logging.getLogger("eanno_window")


class TritonPythonModel:
    """Clip, resample, tile, batch patches to the segmenter with several BLS requests in flight, stitch."""

    def initialize(self, args):
        config, params = model_start(args)  # also: no stub outlives its server
        self.meta = json.loads(params["meta"])  # also read by the flags (a phantom-only model?)
        self.spec = WindowSpec.from_meta(self.meta)
        self.segmenter = params["segmenter"]
        self.window_batch = int(params["window_batch"])
        self.in_flight = int(params["in_flight"])
        self.max_voxels = int(params["max_voxels"])
        self.probs_dtype = pb_utils.triton_string_to_numpy(params["probs_dtype"])
        self.theta = float(params["theta"])
        self.rules = load_rules(None)
        # Shared by every instance of this model (separate processes) through flock'ed slot files.
        self.admission = Admission(
            int(params.get("admission_slots", "2")),
            default_folder(args["model_repository"]),
            int(params.get("admission_unit_voxels", str(512 * 512 * 300))),
            float(params.get("admission_reserve_mb", "0")),
        )

    async def _infer(self, batch):
        # A TensorRT (or ONNX Runtime backend, KIND_AUTO) segmenter on a GPU answers in GPU memory, where
        # as_numpy() raises; the window stitches on the CPU, so ask Triton for the reply in CPU memory (one
        # device-to-host copy per batch, which stitching needs anyway; serving/README.md).
        request = pb_utils.InferenceRequest(
            model_name=self.segmenter,
            requested_output_names=["probs"],
            inputs=[pb_utils.Tensor("image", batch)],
            preferred_memory=pb_utils.PreferredMemory(pb_utils.TRITONSERVER_MEMORY_CPU, 0),
        )
        response = await request.async_exec()
        if response.has_error():
            raise RuntimeError(f"{self.segmenter} failed: {response.error().message()}")
        tensor = pb_utils.get_output_tensor_by_name(response, "probs")
        if not tensor.is_cpu():  # preferred memory is a preference: say so plainly if it was not honoured
            raise RuntimeError(f"{self.segmenter} answered in GPU memory despite preferred_memory=CPU")
        probs = tensor.as_numpy()
        if probs.size == 0:  # a numpy-2 stub answers empty tensors silently (shared/ENVIRONMENT.md)
            raise RuntimeError(f"{self.segmenter} returned an empty probs tensor")
        return probs

    async def _window(self, volume, spacing, request):
        sw = SlidingWindow(volume, spacing, self.spec)

        async def one(starts, batch):
            sw.add(starts, await self._infer(batch))

        # Patches are cut lazily: at most in_flight batches are held, and that many BLS requests in flight.
        pending = set()
        for starts, batch in sw.batches(self.window_batch):
            if len(pending) >= self.in_flight:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            pending.add(asyncio.ensure_future(one(starts, batch)))
        await asyncio.gather(*pending)
        # Region first: the box where the pancreas can be, probabilities resampled inside it only.
        return handoff(
            sw,
            volume,
            self.probs_dtype,
            parse_threshold(optional_input(request, "threshold"), self.theta),
            request_rules(self.rules, optional_input(request, "rules")),
            parse_affine(optional_input(request, "affine"), spacing),
            self.meta,
        )

    async def execute(self, requests):
        responses = []
        for request in requests:
            try:
                volume, spacing = parse_volume_request(
                    pb_utils.get_input_tensor_by_name(request, "volume").as_numpy(),
                    pb_utils.get_input_tensor_by_name(request, "spacing").as_numpy(),
                    self.max_voxels,
                )
                # Before any large allocation: room for this request, or a retryable refusal.
                with self.admission.admit(volume.size):
                    h = await self._window(volume, spacing, request)
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[
                            pb_utils.Tensor("coarse", h.coarse),
                            pb_utils.Tensor("volume_box", h.volume),
                            pb_utils.Tensor("box", h.box),
                            pb_utils.Tensor("removed_outside", h.blocks),
                            pb_utils.Tensor("region", h.region_bytes()),
                        ]
                    )
                )
            except Exception as e:  # one bad request must not fail the others
                responses.append(error_response(e, "eanno_window"))
        return responses
