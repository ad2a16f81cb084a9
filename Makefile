# Two commands: `make run` (set up everything, serve the dashboard) and `make test` (set up, run the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8050
WORKERS ?= 2
DEMO_USERS ?= 1
# the suite runs in this many pytest-xdist processes (whole test modules each; see README "Tests")
TEST_WORKERS ?= 2
export HOST PORT

.PHONY: run test setup setup-test geodata db browser nginx services bench clean-db help

help:
	@echo "make run    - set up .venv, geodata and the demo database, then serve http://$(HOST):$(PORT)"
	@echo "make test   - set up (incl. Debian chromium for browser tests, nginx) and run the whole pytest suite"
	@echo "make bench  - run the benchmarks in bench/ (figures printed and written to bench/results/)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt $(VENV)/.runtime-installed
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime-installed geodata db

setup-test: $(VENV)/.dev-installed geodata browser nginx

# committed geodata is rebuilt only when missing
geodata: $(VENV)/.runtime-installed
	@test -f geodata/grids.geojson || $(BIN)/python -m dashboard.geodata build

# the embedded demo database (SQLite under instance/) is built only when missing
db: $(VENV)/.runtime-installed geodata
	@$(BIN)/python -m dashboard.demo history --if-missing

browser:
	@bash .ci/ensure-browser

# Debian's nginx for the several-hosts test (never started as a service)
nginx:
	@bash .ci/ensure-nginx

services:
	@bash .ci/ensure-services

run: setup
	DEMO_USERS=$(DEMO_USERS) $(BIN)/python -m dashboard serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

test: setup-test services
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15 tests

bench: setup
	$(BIN)/python -m bench

clean-db:
	rm -rf instance/
