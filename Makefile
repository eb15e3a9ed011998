# Two commands on a fresh machine with Python 3.11+:
#   make run    set up and run the whole platform on embedded defaults (demo data, live replay)
#   make test   set up and run every test and check
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint check-contract clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[dev]"
	cd src/tickstock/web/vendor && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/tickstock up

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest-infra .pytest_cache .mypy_cache .ruff_cache
