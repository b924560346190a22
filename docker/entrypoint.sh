#!/usr/bin/env bash
# Build (first start on this GPU / TensorRT) or reuse the plan, then run Triton on the repository.
# Extra arguments go to tritonserver (e.g. --log-verbose=1).
set -euo pipefail
REPO=${EANNO_REPOSITORY:-/models}
CACHE=${EANNO_PLAN_CACHE:-/plans}
SHM=${EANNO_SHM_BYTES:-268435456}

# The same build_plan as `eanno-export trt`; cached under a key of ONNX hash + GPU + TensorRT version.
python3 -m eanno_export.deploy --repository "$REPO" --cache "$CACHE" --fp16

exec tritonserver \
    --model-repository="$REPO" \
    --http-port=8000 --grpc-port=8001 --metrics-port=8002 \
    --exit-on-error=true --strict-readiness=true \
    --backend-config=python,shm-default-byte-size="$SHM" \
    --backend-config=python,shm-growth-byte-size="$SHM" \
    --allow-metrics=true --allow-gpu-metrics=true \
    "$@"
