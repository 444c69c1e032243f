# The two commands of the README: `make demo` and `make test`. Each creates .venv and
# installs the project into it when needed, on a machine with only Python 3.11 and pip.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export RAY_USAGE_STATS_ENABLED := 0

.PHONY: demo test serve lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c "import sys; assert sys.version_info >= (3, 11), sys.version" || { echo "needs Python 3.11+ (make PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/reasoning demo

# The tests run against a real PostgreSQL server (installed here when missing): the store
# unit tests on every run, the store-touching integration tests once more with it as the
# service's metadata store, and the multi-host cluster tests (network namespaces, root).
PG_TESTS := tests/integration/test_auth.py tests/integration/test_jobs.py \
	tests/integration/test_fit_flow.py tests/integration/test_restart.py

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	sh tests/install_postgres.sh
	sh tests/install_chromium.sh
	$(BIN)/python -m pytest -q --durations=15 -m "not cluster"
	REASONING_TEST_STORE=postgresql $(BIN)/python -m pytest -q --durations=5 -m integration $(PG_TESTS)
	$(BIN)/python -m pytest -q --durations=5 tests/cluster

serve: $(STAMP)
	$(BIN)/reasoning serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/fit_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
