#!/usr/bin/env bash
# The server image's Python side: what the Triton Python backend imports (eanno_postproc, eanno_serving,
# numpy < 2) and the torch-free plan placer (eanno_export.deploy). docker/Dockerfile's server stage runs it
# with the image's python3 (3.10); tests/docker/test_image_parity.py runs it into a CPython 3.10 venv
# and serves the ensemble from there with the 3.10 Python-backend stub, so this file is tested here.
# Usage: install-server-python.sh PYTHON [SRC]   (SRC holds requirements/, contracts/, postproc/, serving/, export/)
set -euo pipefail
PY=${1:-python3}
SRC=${2:-.}
"$PY" -m pip install -c "$SRC/requirements/constraints.txt" "$SRC/contracts" "$SRC/postproc" "$SRC/serving"
# eanno-export without its deps: its training side (torch) is not wanted in the server.
"$PY" -m pip install --no-deps "$SRC/export"
"$PY" -c "import numpy, eanno_contracts, eanno_postproc, eanno_serving, eanno_export.deploy; assert numpy.__version__ < '2', numpy.__version__"
