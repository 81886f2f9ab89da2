# montage_pipeline — every target installs what it needs from a clean checkout.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The second tested Python: python3.13 on PATH, else pyenv's; empty when neither runs.
ifndef PYTHON313
PYTHON313 := $(shell for p in python3.13 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null && { command -v "$$p"; break; }; done)
endif
VENV313 := .venv313
WEEK ?= 2025-01-27
CLIPS ?= 20
# The demo's uploads: 720p, three in four at 30 fps, so the montage renders at 30 fps (README, "Two
# commands"); SIZE=1920x1080 FPS=30,60 is the heavier week (1080p uploads, mostly 60 fps output).
SIZE ?= 1280x720
FPS ?= 30,30,30,60
# The embedded profile's Dagster instance (SQLite); production points DAGSTER_HOME elsewhere.
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: help install demo dev test test-py313 lint format validate bench clean services lock

help:
	@echo "make demo    seed a demo week and build it end to end (no server needed)"
	@echo "make test    install, start PostgreSQL if needed, lint, validate definitions (dagster, dg), run the tests"
	@echo "             (then a subset on Python 3.13 too: make test-py313)"
	@echo "make dev     Dagster UI + daemon on the embedded profile (http://127.0.0.1:3000)"
	@echo "make lint | bench | clean | lock (re-pin constraints.txt)"

install: $(VENV)/.installed

# Every package is pinned in constraints.txt (made by `make lock`), so each install gets the same set.
$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

# The same pins on Python 3.13 (constraints.txt marks the few that differ there).
$(VENV313)/.installed: pyproject.toml constraints.txt
	@test -x $(VENV313)/bin/python || $(PYTHON313) -m venv $(VENV313)
	$(VENV313)/bin/python -m pip install --quiet --upgrade pip
	$(VENV313)/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

# Re-resolve the pins from pyproject.toml's ranges in throwaway venvs, on $(PYTHON) and then on 3.13
# within those pins where it can (else freely): one file, what differs under python_version markers.
# A 3.11 venv brings its own setuptools, so that freeze leaves it out; on 3.12+ pip resolved it: pinned.
# Review the diff, then commit it.
lock:
	@test -n "$(PYTHON313)" || { echo "make lock needs Python 3.13 too: set PYTHON313=/path/to/python3.13"; exit 1; }
	rm -rf .venv-lock .venv-lock313
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e '.[dev]'
	.venv-lock/bin/python -m pip freeze --exclude-editable > .venv-lock/freeze.txt
	$(PYTHON313) -m venv .venv-lock313
	.venv-lock313/bin/python -m pip install --quiet --upgrade pip
	.venv-lock313/bin/python -m pip install --quiet -c .venv-lock/freeze.txt -e '.[dev]' \
		|| .venv-lock313/bin/python -m pip install --quiet -e '.[dev]'
	.venv-lock313/bin/python -m pip freeze --all --exclude-editable | grep -v '^pip==' > .venv-lock313/freeze.txt
	.venv-lock/bin/python tools/merge_constraints.py .venv-lock/freeze.txt .venv-lock313/freeze.txt 3.13 > constraints.txt
	rm -rf .venv-lock .venv-lock313

demo: install
	$(BIN)/montage db upgrade
	$(BIN)/montage -v seed demo --week $(WEEK) --clips $(CLIPS) --size $(SIZE) --fps $(FPS)
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
	$(BIN)/mypy montage_pipeline montage_pipeline_tests benchmarks tools

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Both loaders: Dagster's (the code location as the webserver loads it, under workspace.yaml's name,
# the one [tool.dg.project] gives too) and dg's (the defs folder per pyproject's [tool.dg]); dg wants
# the project's venv active, or it warns on every call.
validate: install
	$(BIN)/dagster definitions validate -w workspace.yaml
	VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dg check defs

# Two workers (the machine's two cores): tests wait on networks and retries as much as they compute.
# The tests sharing the session's built week run on one worker, so it is built once (conftest.py).
test: install services lint validate
	$(BIN)/pytest -q -n 2 --dist loadgroup --durations=15
	@$(MAKE) --no-print-directory test-py313

# Python 3.13 runs what depends on the Python version: pydub over audioop-lts (the mix), the 3.13 wheels
# of PyAV, numpy, scipy, OpenCV, psycopg2 and SQLAlchemy under the media, loudness and selection cores,
# one week materialised through Dagster up to mixed_audio, and the pins. The whole suite a second
# time would double `make test`; the rest (publishing, the API, the UI) is Python-version-neutral code.
PY313_TESTS := montage_pipeline_tests/media montage_pipeline_tests/test_selection.py \
	montage_pipeline_tests/test_render_assets.py montage_pipeline_tests/test_reproducible_install.py
test-py313:
	@if [ -z "$(PYTHON313)" ]; then \
		echo "SKIPPED the Python 3.13 tests: no python3.13 on PATH or under pyenv (set PYTHON313=/path/to/it)"; \
	else \
		bash .ci/ensure-postgres && $(MAKE) --no-print-directory $(VENV313)/.installed \
			&& $(VENV313)/bin/pytest -q -n 2 $(PY313_TESTS); \
	fi

# The benchmarks compare against the ffmpeg CLI (Debian's ffmpeg, for benchmarking only: the package
# itself never runs an ffmpeg binary).
bench: install
	@command -v ffmpeg >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null; } \
		|| echo "ffmpeg not installed: the floor rows will be skipped (apt-get install ffmpeg)"
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python "$$script" || exit 1; done

clean:
	rm -rf $(VENV) $(VENV313) .montage .mypy_cache .ruff_cache .pytest_cache build *.egg-info
	find .dagster_home -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
