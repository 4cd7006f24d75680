# CoDream Network. On a fresh machine: `make demo` or `make test`; each installs what
# it needs on first use and is fast afterwards.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(CURDIR)/$(VENV)/bin/python
# torch goes in first so no requirement ever pulls a multi-GB CUDA build.
# GPU users: make setup TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= torch==2.13.0
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)

STAMP_TORCH := $(VENV)/.stamp-torch
STAMP_PY := $(VENV)/.stamp-project
STAMP_NPM := node_modules/.stamp-npm
STAMP_TOOLS := $(VENV)/.stamp-tools
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test test-fast test-forge bench bench-gpu clean devnet-up devnet-down chromium dapp

setup: $(STAMP_PY) $(STAMP_NPM) $(STAMP_TOOLS) .env

.env:
	cp .env.example .env

$(STAMP_TORCH):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install $(TORCH_SPEC)
	touch $@

$(STAMP_PY): $(STAMP_TORCH) pyproject.toml
	$(PY) -m pip install -q -e '.[test]'
	touch $@

$(STAMP_NPM): package.json package-lock.json
	# `npm ci` installs exactly the committed lock and never rewrites it (the tree stays clean);
	# the lock lists the foundry packages' optional deps for every platform, as npm writes it.
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(STAMP_TOOLS): $(STAMP_PY) $(STAMP_NPM) scripts/solc-shim.js scripts/install-solc-shim.sh scripts/register-networks.sh
	scripts/install-solc-shim.sh
	scripts/register-networks.sh
	touch $@

demo: setup
	scripts/install-solc-shim.sh
	codream demo

# the dapp's browser test runs Debian's chromium (no browser downloads here)
chromium:
	@command -v chromium >/dev/null || { echo "installing Debian chromium for the dapp browser test"; \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium) || \
	  { echo "could not install chromium: run 'sudo apt-get install chromium'" >&2; exit 1; }; }

# Every test, on two workers (one file per worker at a time; the heaviest files start first:
# tests/conftest.py HEAVY_FIRST). `pytest tests` on one worker runs the same tests.
test: setup chromium
	scripts/install-solc-shim.sh
	$(PY) -m pytest tests -n 2 --dist loadfile --no-loadscope-reorder --durations=30

# The edit loop: everything but the devnet rounds and the full-length forge run (tests marked
# `slow`), on two workers. `make test` still runs every test.
test-fast: setup
	scripts/install-solc-shim.sh
	$(PY) -m pytest tests -m "not slow" -n 2 --dist loadfile -q --durations=15

# forge on its full default profile (make test runs the `light` one: see foundry.toml)
test-forge: setup
	FOUNDRY_PROFILE=default forge test

bench: setup
	codream bench all

# The CIFAR-size mining path on a GPU (ResNet-34 teacher, 32 px): dreams/s, peak memory and GPU
# utilisation as JSON, in about 2 minutes. It needs only torch, numpy, safetensors and tqdm, so a GPU
# image's own python can run it: `make bench-gpu BENCH_PY=python3` (add ARGS="--teacher W.safetensors"
# for a trained teacher). MNIST_TASK=DIR (a `codream teacher train --dataset mnist` folder) adds an MNIST point:
# 4,000 dreams from our generator and from DeepInversion, scored on the GPU. Without CUDA it says so and
# exits 2; ARGS=--dry-run checks the code on CPU.
BENCH_PY ?= $(if $(wildcard $(PY)),$(PY),python3)
MNIST_TASK ?=
bench-gpu:
	$(BENCH_PY) -m rounds.bench_gpu $(if $(MNIST_TASK),--mnist-task $(MNIST_TASK)) $(ARGS)

dapp: setup
	codream dapp

devnet-up: setup
	codream devnet up

devnet-down:
	codream devnet down

clean:
	rm -rf build out cache reports .pytest_cache
