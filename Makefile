# Veracity: `make demo` sets up and runs the pipeline on the embedded engine;
# `make test` runs the tests. Both run `setup` first, which is quick when done.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
ENVIRONMENTS := dev test prod

.PHONY: setup demo test lint synth bench clean

setup: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(VENV)/bin/veracity demo

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .

synth: setup
	for env in $(ENVIRONMENTS); do npx cdk synth --quiet "Veracity-$$env/*" || exit 1; done

BENCH_LAKE := bench-lake

bench: setup
	rm -rf $(BENCH_LAKE)
	$(PY) benchmarks/generate_bench.py --people 1000000 --lake $(BENCH_LAKE)
	$(PY) benchmarks/scrub_bench.py --lake $(BENCH_LAKE)
	$(PY) benchmarks/pipeline_bench.py --people 20000 --lake $(BENCH_LAKE)/pipeline
	$(PY) benchmarks/blocking_bench.py --lake $(BENCH_LAKE)/pipeline
	$(PY) benchmarks/delta_bench.py --lake $(BENCH_LAKE)/pipeline --load 2
	rm -rf $(BENCH_LAKE)

clean:
	rm -rf cdk.out demo-lake bench-lake .pytest_cache .ruff_cache
