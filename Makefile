# Veracity: `make demo` sets up and runs the pipeline on the embedded engine;
# `make test` runs the tests. Both run `setup` first, which is quick when done.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
ENVIRONMENTS := dev test prod

.PHONY: setup demo test lint synth glue-wheels search-wheels bench clean

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

test: setup search-wheels
	$(PY) -m pytest

# ruff, then cfn-lint (settings in .cfnlintrc.yaml) over every template of a
# fresh synth (cdk.out is cleared because synth never removes the templates of
# stacks that no longer exist), checked for the regions cdk.json deploys to.
lint: setup
	$(VENV)/bin/ruff check .
	rm -rf cdk.out
	$(MAKE) --no-print-directory synth
	$(VENV)/bin/cfn-lint "cdk.out/**/*.template.json" --config-file .cfnlintrc.yaml \
	  --regions $$($(PY) -c 'import json; \
	envs = json.load(open("cdk.json"))["context"]["environments"]; \
	print(*{env["region"] for env in envs.values()})')

# The Glue jobs' wheelhouse: the core package and every pin of requirements-glue.txt,
# as manylinux wheels for Glue 5.0's Python 3.11, shipped as one zip asset (the jobs
# install with --no-index: no internet from a locked-down VPC).
GLUE_WHEELS := build/glue-wheels
GLUE_WHEELS_STAMP := build/.glue-wheels-built

glue-wheels: $(GLUE_WHEELS_STAMP)

$(GLUE_WHEELS_STAMP): requirements-glue.txt pyproject.toml $(shell find veracity -name '*.py' -o -name '*.yaml') | setup
	rm -rf $(GLUE_WHEELS) && mkdir -p $(GLUE_WHEELS)
	$(PY) -m pip download --quiet --disable-pip-version-check --only-binary=:all: --implementation cp \
	  --python-version 3.11 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux_2_28_x86_64 -r requirements-glue.txt -d $(GLUE_WHEELS)
	$(PY) -m pip wheel --quiet --disable-pip-version-check --no-deps -w $(GLUE_WHEELS) .
	touch $@

# The search Lambda's packages (it has no layer): manylinux wheels for Python 3.13,
# unpacked into its bundle at synth (no Docker). The tests check that bundle's size.
SEARCH_WHEELS := build/search-wheels
SEARCH_WHEELS_STAMP := build/.search-wheels-built

search-wheels: $(SEARCH_WHEELS_STAMP)

$(SEARCH_WHEELS_STAMP): requirements-search.txt | setup
	rm -rf $(SEARCH_WHEELS) && mkdir -p $(SEARCH_WHEELS)
	$(PY) -m pip download --quiet --disable-pip-version-check --only-binary=:all: --no-deps --implementation cp \
	  --python-version 3.13 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux_2_28_x86_64 -r requirements-search.txt -d $(SEARCH_WHEELS)
	touch $@

synth: setup glue-wheels search-wheels
	for env in $(ENVIRONMENTS); do npx cdk synth --quiet "Veracity-$$env/*" || exit 1; done

BENCH_LAKE := bench-lake

bench: setup
	rm -rf $(BENCH_LAKE)
	$(PY) benchmarks/generate_bench.py --people 1000000 --lake $(BENCH_LAKE)
	$(PY) benchmarks/scrub_bench.py --lake $(BENCH_LAKE)
	$(PY) benchmarks/pipeline_bench.py --people 20000 --lake $(BENCH_LAKE)/pipeline
	$(PY) benchmarks/blocking_bench.py --lake $(BENCH_LAKE)/pipeline
	$(PY) benchmarks/search_bench.py --lake $(BENCH_LAKE)/pipeline --queries 1000
	$(PY) benchmarks/delta_bench.py --lake $(BENCH_LAKE)/pipeline --load 2
	rm -rf $(BENCH_LAKE)

clean:
	rm -rf cdk.out demo-lake bench-lake build .pytest_cache .ruff_cache
