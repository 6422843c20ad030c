# The two commands: `make demo` and `make test`. Both set up .venv first: `make demo` with only what the
# gateway needs (the base install), `make test` adds the test extras and Debian's chromium (browser tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed-base
TEST := $(VENV)/.installed-test
PORT ?= 8080
# pytest-xdist workers for `make test`
TEST_WORKERS ?= 2
# not --quiet: pip shows each package it collects and, on a terminal, a download bar (PIP_QUIET=1: quiet)
PIP := $(BIN)/pip install --disable-pip-version-check $(if $(PIP_QUIET),--quiet,)

.PHONY: demo test lint bench clean chromium

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)

$(BASE): pyproject.toml | $(VENV)/bin/python
	@echo "== installing sitewise-edge and its runtime dependencies into $(VENV) (no test tools)"
	$(PIP) -e .
	@touch $(BASE)

$(TEST): pyproject.toml $(BASE)
	@echo "== installing the test extras (pytest, mypy, ruff, moto, awscli, playwright...)"
	$(PIP) -e '.[test]'
	@touch $(TEST)

# the browser tests drive Debian's chromium (tests/api/test_dashboard_browser.py); playwright downloads no browser
chromium:
	@command -v chromium >/dev/null || { echo "== installing chromium (apt-get) for the browser tests"; \
	  apt-get install -y chromium || { apt-get update && apt-get install -y chromium; } || \
	  { echo "chromium is needed by the browser tests: apt-get install chromium (as root)" >&2; exit 1; }; }

demo: $(BASE)
	$(BIN)/sitewise-edge demo --port $(PORT)

test: $(TEST) chromium
	$(BIN)/ruff check .
	$(BIN)/mypy
	@$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS); s=$$?; \
	if [ $$s -eq 5 ]; then echo "make test: no test was collected" >&2; exit 1; fi; exit $$s

lint: $(TEST)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(TEST)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) demo-data examples/data .pytest_cache
