# Two commands for a fresh machine with Python 3.11 and make:  `make demo` and `make test`.
# Each bootstraps its own virtualenv with uv (fast, bytecode compiled: see README).

PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
# Airflow's constraint files cannot be fetched here; resolving "as of a date" pins every
# transitive dependency the same way, so a fresh clone installs what CI tested.
EXCLUDE_NEWER ?= 2026-11-22
PYTEST_ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)

.PHONY: venv test e2e lint demo bench test-airflow-3.0 clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install -q uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python \
		--exclude-newer $(EXCLUDE_NEWER) "apache-airflow==$(AIRFLOW_VERSION)" -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

test: venv
	$(BIN)/python -m pytest -q -m "not e2e" $(PYTEST_ARGS)

# Real multi-process deployments on loopback, driven through the REST API (tests/e2e/): the deferral
# race on LocalExecutor, then the example DAGs on CeleryExecutor with Redis (.ci/redis.sh) and
# PostgreSQL, and the UI in Debian's chromium (.ci/chromium.sh; both apt-installed when missing).
# Prints each stage's time. COINSTATS_E2E_SCREENSHOTS=docs/images refreshes the README's screenshots.
e2e: venv
	COINSTATS_E2E=1 $(BIN)/python -m pytest -q -s -m e2e --timeout 900 -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

demo: venv
	$(BIN)/python -m airflow_provider_coinstats.demo

bench: venv
	$(BIN)/python -m benchmarks

# The oldest supported line; --exclude-newer stands in for its constraint file (see README).
test-airflow-3.0:
	$(MAKE) test VENV=.venv-af30 AIRFLOW_VERSION=3.0.6 EXCLUDE_NEWER=2025-09-05

clean:
	rm -rf .venv .venv-af30 .airflow .pytest_cache .mypy_cache .ruff_cache
