# The two commands of the README: `make demo` and `make test`. Both create the venv and
# install on first use (pinned by requirements.lock), so they work on a fresh clone.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RUNTIME_STAMP := $(VENV)/.runtime-stamp
PYTHON ?= python3

.PHONY: install demo test lint typecheck unit bench services lock clean

# runtime only (what `make demo` needs, quicker on a fresh machine), then the dev tools;
# scripts/install.sh installs with uv (pip if uv fails), see docs/adr/0009-uv-installer.md
$(RUNTIME_STAMP): pyproject.toml requirements.lock
	@PYTHON=$(PYTHON) scripts/install.sh
	@touch $(RUNTIME_STAMP)

$(STAMP): $(RUNTIME_STAMP)
	@PYTHON=$(PYTHON) scripts/install.sh dev
	@touch $(STAMP)

install: $(STAMP)

demo: $(RUNTIME_STAMP)
	$(BIN)/tradelog demo

services:
	@scripts/services.sh

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q --doctest-modules src tests

# the browser tests need Debian's chromium: only `make test` installs it (not `make bench`)
test: install
	@NEED_CHROMIUM=1 scripts/services.sh
	@$(MAKE) --no-print-directory lint typecheck unit

bench: install services
	$(BIN)/python benchmarks/replay.py
	$(BIN)/python benchmarks/live.py --rates 2000,20000 --seconds 20
	$(BIN)/python benchmarks/live.py --rates 45000 --seconds 60
	$(BIN)/python benchmarks/query.py --events 1000000
	$(BIN)/python benchmarks/report.py --events 1000000
	$(BIN)/python benchmarks/surveil.py --events 1000000 --pipeline-repeat 2 --repeat 1
	$(BIN)/python benchmarks/nats_ingest.py --events 100000 --per-message 1,100
	$(BIN)/python benchmarks/pg_ingest.py --events 200000
	$(BIN)/python benchmarks/scale.py --events 200000

lock:
	$(BIN)/pip freeze --exclude-editable --disable-pip-version-check | grep -v '^tradelog' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
