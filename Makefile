# Every target bootstraps .venv from the pinned constraints on first use.
PY      := .venv/bin/python
STAMP   := .venv/.installed-stamp
SCENARIO ?= scenarios/demo.json

.PHONY: demo test test-domain test-unit test-workflow test-infra test-cli lint format synth bench bench-docs graph clean lock

$(STAMP): pyproject.toml constraints.txt
	@command -v dot >/dev/null || { echo "installing Graphviz (smart-vault graph)"; \
	  (apt-get update -qq && apt-get install -y -qq graphviz) >/dev/null 2>&1 || \
	  sudo sh -c 'apt-get update -qq && apt-get install -y -qq graphviz' >/dev/null 2>&1 || \
	  echo "warning: could not install Graphviz; 'smart-vault graph' needs its 'dot' command"; }
	@echo "creating .venv and installing the pinned dependencies (first run only, a few minutes)" >&2
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	.venv/bin/smart-vault simulate $(SCENARIO) --report reports/demo-report.json

# The whole suite with a coverage report of the four packages (a report, not a gate).
COVERAGE := --cov=smart_vault --cov=smart_vault_sim --cov=smart_vault_cli --cov=smart_vault_infra \
	--cov-report=term:skip-covered

test: $(STAMP)
	$(PY) -m pytest -n 2 -q $(COVERAGE)

# Domain logic with in-memory adapters: no moto, seconds.
test-domain: $(STAMP)
	$(PY) -m pytest -q tests/unit/domain

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

test-workflow: $(STAMP)
	$(PY) -m pytest -q tests/workflow

test-infra: $(STAMP)
	$(PY) -m pytest -q tests/infra

test-cli: $(STAMP)
	$(PY) -m pytest -q tests/cli

lint: $(STAMP)
	.venv/bin/ruff check functions infra tests
	.venv/bin/ruff format --check functions infra tests
	.venv/bin/mypy
	.venv/bin/mypy infra/app.py

format: $(STAMP)
	.venv/bin/ruff format functions infra tests
	.venv/bin/ruff check --fix functions infra tests

synth: $(STAMP)
	.venv/bin/python infra/app.py $(CONTEXT)

# The fleet benchmark (about 20 minutes) into reports/; bench-docs updates docs/benchmarks.md.
bench: $(STAMP)
	$(PY) -m smart_vault_sim.bench --out reports

bench-docs: $(STAMP)
	$(PY) -m smart_vault_sim.bench --docs

# Regenerates the picture of the demo run embedded in the README.
graph: $(STAMP)
	.venv/bin/smart-vault simulate $(SCENARIO) --report reports/demo-report.json --quiet
	.venv/bin/smart-vault graph --report reports/demo-report.json -o docs/demo-run.png

# Regenerate constraints.txt from the current .venv (run after changing pyproject.toml).
lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^smart-vault' > constraints.txt

clean:
	rm -rf .venv cdk.out reports .pytest_cache .mypy_cache .ruff_cache
