# The two commands: `make run` starts the service, `make test` runs the whole suite.
# Both create or update the virtual environment first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/epochal serve

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/metric_writes.py
	$(BIN)/python bench/vs_plain.py
	$(BIN)/python bench/diagnostics_overhead.py
	$(BIN)/python bench/reference_results.py
	$(BIN)/python bench/checkpoint_cost.py
	$(BIN)/python bench/sweep_efficiency.py
	$(BIN)/python bench/small_jobs.py
	$(BIN)/python bench/s3_client_weight.py
	$(BIN)/python bench/recovery.py
	$(BIN)/python bench/submit_load.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
