# montage_pipeline — every target installs what it needs from a clean checkout.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WEEK ?= 2025-01-27
CLIPS ?= 20
SIZE ?= 1920x1080
# The embedded profile's Dagster instance (SQLite); production points DAGSTER_HOME elsewhere.
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: help install demo dev test lint format validate bench clean services lock

help:
	@echo "make demo    seed a demo week and build it end to end (no server needed)"
	@echo "make test    install, start PostgreSQL if needed, lint, validate definitions, run the tests"
	@echo "make dev     Dagster UI + daemon on the embedded profile (http://127.0.0.1:3000)"
	@echo "make lint | bench | clean | lock (re-pin constraints.txt)"

install: $(VENV)/.installed

# Every package is pinned in constraints.txt (made by `make lock`), so each install gets the same set.
$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

# Re-resolve the pins from pyproject.toml's ranges in a throwaway venv; review the diff, then commit it.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e '.[dev]'
	.venv-lock/bin/python -m pip freeze --exclude-editable > constraints.txt
	rm -rf .venv-lock

demo: install
	$(BIN)/montage db upgrade
	$(BIN)/montage -v seed demo --week $(WEEK) --clips $(CLIPS) --size $(SIZE)
	$(BIN)/dagster asset materialize --select '*' --partition $(WEEK) -m montage_pipeline.definitions
	@echo
	@echo "Week $(WEEK) built. Platform DB and asset tables: .montage/platform.sqlite;"
	@echo "clips: .montage/storage/demo/$(WEEK)/ (planted events in planted.json); media: .montage/media/."
	@echo "Open the UI with 'make dev' and browse http://127.0.0.1:3000 (Assets > montage)."

dev: install
	$(BIN)/montage db upgrade
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

services:
	@bash .ci/ensure-postgres
	@bash .ci/ensure-chromium

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy montage_pipeline montage_pipeline_tests benchmarks

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

validate: install
	$(BIN)/dagster definitions validate -m montage_pipeline.definitions

# Two workers (the machine's two cores): tests wait on networks and retries as much as they compute.
# The tests sharing the session's built week run on one worker, so it is built once (conftest.py).
test: install services lint validate
	$(BIN)/pytest -q -n 2 --dist loadgroup

# The benchmarks compare against the ffmpeg CLI (Debian's ffmpeg, for benchmarking only: the package
# itself never runs an ffmpeg binary).
bench: install
	@command -v ffmpeg >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null; } \
		|| echo "ffmpeg not installed: the floor rows will be skipped (apt-get install ffmpeg)"
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python "$$script" || exit 1; done

clean:
	rm -rf $(VENV) .montage .mypy_cache .ruff_cache .pytest_cache build *.egg-info
	find .dagster_home -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
