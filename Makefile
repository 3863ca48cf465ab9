# Set-up is part of every target: a fresh clone needs nothing but Python 3.10+ and make.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
EXTRAS ?= dev,classic,atari,dmc,zoo
BIN := $(VENV)/bin
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: install demo test test-slow lint typecheck format bench bench-gpu gpu-prepare clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install curl_rl with the dev and env extras

demo: $(STAMP)  ## the main job: a short with/without-aux comparison on the default pixel env
	$(BIN)/curl-rl compare --env distractor-easy --algo ppo --arms none,aug,curl --seeds 2 --preset-budget quick --name demo

test: $(STAMP)  ## the default test suite (slow tests excluded)
	$(BIN)/python -m pytest -n 2 -q

test-slow: $(STAMP)  ## only the slow tests (long training, Ray, crash tests)
	$(BIN)/python -m pytest -n 2 -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check curl_rl tests benchmarks docs/results
	$(BIN)/ruff format --check curl_rl tests benchmarks docs/results

format: $(STAMP)
	$(BIN)/ruff format curl_rl tests benchmarks docs/results
	$(BIN)/ruff check --fix curl_rl tests benchmarks docs/results

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)  ## CPU benchmarks; results go to BENCHMARKS.md by hand, with command, machine and date
	$(BIN)/python -m benchmarks.overhead
	$(BIN)/python -m benchmarks.replay_memory
	$(BIN)/python -m benchmarks.augmentation --threads 1
	$(BIN)/python -m benchmarks.encoder_efficiency
	$(BIN)/python -m benchmarks.envs

bench-gpu:  ## on a CUDA machine: CurlSAC vs SAC on DMC cartpole swingup, batch 512 (< 8 min)
	bash benchmarks/gpu.sh

gpu-prepare:  ## before a GPU session, where PyPI is reachable: pack .whl/ and .gl/ for the offline GPU machine
	PYTHON=$(BIN)/python bash benchmarks/gpu_prepare.sh

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
