# EfficientAnno: every command a user or CI needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := contracts postproc training serving export client
PYPROJECTS := $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help setup test test-client-py310 demo bench lint eval bench-postproc bench-model bench-serving bench-client bench-loadtest fuzz soak clean train-shipped

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

setup: $(STAMP)  ## create .venv with the pinned dependencies (fast when nothing changed)

# EANNO_CONTRACTS_BY_NAME: the client takes eanno-contracts by name here, from the editable ./contracts
# (pip refuses that and the client's own file: URL to the same folder together; client/setup.py).
$(STAMP): requirements/constraints.txt requirements/dev.txt $(PYPROJECTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	EANNO_CONTRACTS_BY_NAME=1 $(BIN)/pip install -q --disable-pip-version-check -c requirements/constraints.txt \
		-r requirements/dev.txt $(foreach p,$(PACKAGES),-e ./$(p)[all])
	@touch $(STAMP)

test: setup  ## run the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# make test runs tests/client's server-free tests and those marked py310 on CPython 3.10 too
# (tests/docker/test_client_py310.py); this runs all of tests/client there, its servers on 3.10 as well.
test-client-py310: setup  ## the whole client test suite on CPython 3.10 (the oldest workstation Python)
	EANNO_PY310_FULL=1 $(BIN)/python -m pytest tests/docker/test_client_py310.py -k whole -s $(PYTEST_ARGS)

demo: setup  ## the main job end to end on the embedded default
	$(BIN)/python scripts/demo.py

lint: setup  ## ruff (lint and format check) over every package and the tests; mypy over every package (pyproject.toml [tool.mypy])
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: bench-postproc bench-model bench-serving bench-client bench-loadtest  ## every benchmark (long)

bench-postproc: setup  ## post-processing speed against the scipy baseline
	$(BIN)/python postproc/benchmarks/bench_postproc.py

bench-model: setup  ## predictor throughput of the small model on this CPU
	$(BIN)/python training/benchmarks/bench_model.py

# The one recorded command behind training/eanno_training/weights/small_phantom.pt (training/MODEL_CARD.md):
# the packaged config (plain U-Net head, 40 epochs) on 60 phantoms, then theta calibrated on 10 phantoms of
# the calibration seed (never the held-out 2026 of make eval).
SHIPPED_TRAIN := finetune --phantoms 60 --seed 7 --threads 1 --out runs/small_phantom -v --no-progress
SHIPPED_CALIBRATE := --phantoms 10 --seed 424242 --target 0.99 --or-best --threads 1
train-shipped: setup  ## retrain the shipped phantom model (about 40 min on this 2-core machine when quiet)
	$(BIN)/eanno-train $(SHIPPED_TRAIN) --export training/eanno_training/weights/small_phantom.pt
	$(BIN)/eanno-train calibrate --checkpoint training/eanno_training/weights/small_phantom.pt $(SHIPPED_CALIBRATE)

# Held-out phantoms (seed 2026, as the model card's eanno-train evaluate; never used for training) with the shipped model: FROC before/after
# post-processing, theta*, the patient-level table; figures go into the model card between markers.
EVAL_ARGS ?= --phantoms 20 --seed 2026 --shipped --thetas 0.0003,0.001,0.003,0.01,0.03,0.1,0.2,0.3,0.4,0.5,0.7,0.9 --out build/eval
eval: setup  ## evaluate the shipped model on held-out phantoms; writes build/eval/ and training/MODEL_CARD.md
	$(BIN)/eanno-eval patient $(EVAL_ARGS) --model-card training/MODEL_CARD.md

bench-serving: setup  ## the local Triton server against the in-process predictor
	$(BIN)/python serving/benchmarks/bench_serving.py

bench-client: setup  ## the client's own time and a pipelined batch
	$(BIN)/python client/benchmarks/bench_client.py

fuzz: setup  ## fuzz the client's input readers with hypothesis (FUZZ_SECONDS, default 120)
	$(BIN)/python tests/client/fuzz_readers.py --seconds $${FUZZ_SECONDS:-120}

soak: setup  ## 4 clients against a local server for SOAK_SECONDS (300): errors, RSS, /dev/shm (SOAK_ARGS="--repository DIR"; "--burst 8": 8 full-size requests at once, bounded admission)
	$(BIN)/python scripts/soak.py --seconds $${SOAK_SECONDS:-300} $(SOAK_ARGS)

PERF_VENV := .venv-perf

$(PERF_VENV)/.installed: requirements/perf.txt
	@dpkg -s libb64-0d >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q libb64-0d; } \
		|| { echo "perf_analyzer needs Debian's libb64-0d: apt-get install libb64-0d" >&2; exit 1; }
	@test -x $(PERF_VENV)/bin/python || $(PYTHON) -m venv $(PERF_VENV)
	$(PERF_VENV)/bin/pip install -q --disable-pip-version-check -r requirements/perf.txt
	@touch $@

bench-loadtest: setup $(PERF_VENV)/.installed  ## eanno-client loadtest against Triton's perf_analyzer (96x96x48 volume)
	$(BIN)/python client/benchmarks/bench_loadtest.py $(BENCH_ARGS)

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) $(PERF_VENV) .venv-py310 .venv-py310-client .venv-py310-tests .venv-py313-client .pytest_cache .ruff_cache .mypy_cache
