# The two commands: `make serve` and `make test`. Everything else is a helper for them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
ARGS ?=

.PHONY: serve test lint typecheck pytest venv clean bench bench-quick browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

## Start the server on embedded durable storage (./flashq-data): TCP :6789, HTTP + dashboard :6790.
serve: $(STAMP)
	$(BIN)/flashq serve --http $(ARGS)

## Lint, type-check and run the whole test suite.
test: $(STAMP) browser lint typecheck pytest

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

## Headless Chromium for the dashboard test (tests/http/test_dashboard_browser.py), from Debian.
browser:
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  command -v google-chrome >/dev/null || \
	  ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

lint: $(STAMP)
	$(BIN)/ruff check flashq shards tests benchmarks examples
	$(BIN)/ruff format --check flashq shards tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest $(ARGS)

clean:
	rm -rf $(VENV) flashq-data .pytest_cache .mypy_cache .ruff_cache

## Benchmarks side by side with the peers (BullMQ, Celery, RQ, arq, dramatiq, saq, taskiq):
## installs them under benchmarks/.peers and benchmarks/node_modules (never in .venv), needs
## Redis on 127.0.0.1:6379 and Node.js. ~30 min; writes benchmarks/results/latest.{md,json,png}.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(ARGS)

## The same in under 3 minutes while optimizing: 1 round, fewer jobs, flashQ + BullMQ + raw Redis.
bench-quick: $(STAMP)
	$(BIN)/python benchmarks/run.py --quick $(ARGS)
