# The two commands: `make run` starts the service, `make test` runs the whole suite.
# Both create or update the virtual environment first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean

# The light client (client/, distribution epochal-client) in the same pip call as the server,
# which depends on it: pip takes it from ./client, never from an index.
$(STAMP): pyproject.toml client/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./client -e '.[test]'
	touch $(STAMP)

# The benchmarks' own dependencies (the `bench` extra: Keras, boto3) on top of the above.
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ./client -e '.[test,bench]'
	touch $(BENCH_STAMP)

run: $(STAMP)
	$(BIN)/epochal serve

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The benchmarks, each run alone with `python bench/<script>.py`: the scripts that print the
# issue's GOAL lines first (the quickest first), then the rest. Everything goes to
# $(BENCH_LOG); the table of GOAL lines comes last, with any script that failed.
BENCH_LOG ?= var/bench.log
BENCH_SCRIPTS ?= \
	bench/vs_sklearn.py \
	bench/vs_keras.py \
	bench/vs_plain.py \
	bench/small_jobs.py \
	bench/ui_long_series.py \
	bench/metric_writes.py \
	bench/diagnostics_overhead.py \
	bench/reference_results.py \
	bench/checkpoint_cost.py \
	bench/sweep_efficiency.py \
	bench/health_pruning.py \
	bench/lr_finder_digits.py \
	bench/s3_client_weight.py \
	bench/recovery.py \
	bench/submit_load.py

bench: $(BENCH_STAMP)
	@mkdir -p $(dir $(BENCH_LOG)) && : > $(BENCH_LOG)
	@for script in $(BENCH_SCRIPTS); do \
		echo "=== $$script" | tee -a $(BENCH_LOG); \
		{ $(BIN)/python -u $$script; echo "=== exit $$?"; } 2>&1 | tee -a $(BENCH_LOG); \
	done
	@echo; echo "Goals (from $(BENCH_LOG)):"
	@$(BIN)/python bench/goals.py $(BENCH_LOG) $(BENCH_SCRIPTS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info client/build client/src/*.egg-info
