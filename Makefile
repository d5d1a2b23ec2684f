# The one task runner: the README, .ci/run and developers all call these targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo check lint typecheck test install dev chaos bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# An editable install ships no bytecode, and where PYTHONDONTWRITEBYTECODE is set (this
# build machine) every process would compile the package again (~0.3 s of CPU each).
install: $(BIN)/python
	$(BIN)/pip install -q -e .
	$(BIN)/python -m compileall -q orchestrator

dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python -m compileall -q orchestrator

demo: install
	$(BIN)/ontap-rekey demo

lint: dev
	$(BIN)/ruff check orchestrator tests benchmarks
	$(BIN)/ruff format --check orchestrator tests benchmarks

typecheck: dev
	$(BIN)/mypy

# The suite waits more than it computes (simulators on loopback, subprocesses killed and
# resumed): one worker per core (pytest-xdist) halves its wall time on two cores.
test: dev
	$(BIN)/pytest -q -p no:cacheprovider -n auto --dist worksteal

# Everything CI checks: lint, strict type check, the whole test suite.
check: lint typecheck test
