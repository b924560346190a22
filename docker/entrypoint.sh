#!/usr/bin/env bash
# Place the TensorRT plan for this GPU and TensorRT (built by the one-shot eanno-plan service), then run
# Triton. A plan already in the repository is used as it is. Extra arguments go to tritonserver.
set -euo pipefail
REPO=${EANNO_REPOSITORY:-/models}
CACHE=${EANNO_PLAN_CACHE:-/plans}
SHM=${EANNO_SHM_BYTES:-268435456}
PRECISION=${EANNO_PLAN_PRECISION:-fp16}
# Administrative protocols (model repository, shared memory, statistics, trace, logging) answer only to
# requests that carry this header; EANNO_ADMIN_KEY unset -> a random key nobody knows (restricted anyway).
ADMIN_KEY=${EANNO_ADMIN_KEY:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}
ADMIN="model-repository,shared-memory,statistics,trace,logging"
RESTRICT=(--grpc-restricted-protocol="$ADMIN:eanno-admin-key=$ADMIN_KEY"
          --http-restricted-api="$ADMIN:eanno-admin-key=$ADMIN_KEY")
# EANNO_SITE_TOKEN set -> inference needs the header triton-grpc-protocol-eanno-site-token: <token> (gRPC).
if [[ -n "${EANNO_SITE_TOKEN:-}" ]]; then
    RESTRICT+=(--grpc-restricted-protocol="inference:eanno-site-token=$EANNO_SITE_TOKEN"
               --http-restricted-api="inference:eanno-site-token=$EANNO_SITE_TOKEN")
fi

if [[ -f "$REPO/eanno_segmenter/model.onnx" || -f "$REPO/eanno_segmenter/1/model.plan" ]]; then
    python3 -m eanno_export.deploy place --repository "$REPO" --cache "$CACHE" --precision "$PRECISION"
fi

exec tritonserver \
    --model-repository="$REPO" \
    --http-port=8000 --grpc-port=8001 --metrics-port=8002 \
    --exit-on-error=true --strict-readiness=true \
    --backend-config=python,shm-default-byte-size="$SHM" \
    --backend-config=python,shm-growth-byte-size="$SHM" \
    --allow-metrics=true --allow-gpu-metrics=true \
    "${RESTRICT[@]}" \
    "$@"
