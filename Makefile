# Two commands run everything: `make repro` and `make test`. Each sets up .venv when needed.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-stamp
export PATH := $(BIN):$(PATH)
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2  # test files run on this many processes (pytest-xdist, one file per process at a time)
BENCH_ARGS ?=

.PHONY: setup repro test lint bench clean-venv

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m fretlab.audio.jit_cache  # compile librosa's numba kernels once, before any parallel run
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install pinned dependencies + fretlab (editable)

repro: $(STAMP)  ## run the whole DVC pipeline (only what changed)
	dvc repro

test: $(STAMP)  ## lint, then the whole test suite (unit + DVC integration)
	ruff check .
	pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	ruff check .

bench: $(STAMP)  ## benchmarks in a temporary copy of the repo: table + bench/results.json (BENCH_ARGS="--full --scale 10000 20000")
	python scripts/bench.py $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
