# The whole set-up is two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: demo test lint typecheck unit bench clean typecheck-tree

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# runtime install (the demo needs nothing else)
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# development install: runtime plus the dev extra
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/seatledger demo $(ARGS)

# mypy does not follow the editable install's import hook: give it the installed layout as links
typecheck-tree:
	@mkdir -p .typecheck/seatledger
	@for d in domain projections application; do ln -sfn ../../$$d .typecheck/seatledger/$$d; done

test: $(VENV)/.dev typecheck-tree
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev typecheck-tree
	$(BIN)/mypy

unit: $(VENV)/.dev
	$(BIN)/python -m pytest -m "not postgres and not slow" $(ARGS)

# the whole suite (BENCH_OUT: the JSON file; BENCH_QUICK=1: reduced sizes), or one benchmark
# with ARGS="<name> [options]"
bench: $(VENV)/.dev
	$(BIN)/python -m bench $(or $(ARGS),suite)

clean:
	rm -rf $(VENV) .typecheck .mypy_cache .pytest_cache .ruff_cache seatledger.db* seatledger-demo.db*
