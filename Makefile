# The two commands: `make serve` and `make test`. Everything else is a helper for them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
ARGS ?=

.PHONY: serve test lint typecheck pytest venv clean bench bench-quick

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

## Start the server on embedded durable storage (./flashq-data), TCP :6789.
serve: $(STAMP)
	$(BIN)/flashq serve $(ARGS)

## Lint, type-check and run the whole test suite.
test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check flashq shards tests benchmarks examples
	$(BIN)/ruff format --check flashq shards tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest $(ARGS)

clean:
	rm -rf $(VENV) flashq-data .pytest_cache .mypy_cache .ruff_cache
