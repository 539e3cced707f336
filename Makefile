# Two commands do everything on a fresh machine:
#   make demo   create .venv, install, run the main job (a real study in SQLite)
#   make test   install what the tests need, run lint, types, docs and the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Pinned torch/torchvision pair (see constraints.txt).
CONSTRAINTS := -c constraints.txt
ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck docs bench overhead chromium clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.demo-installed: pyproject.toml constraints.txt | $(PY)
	$(PIP) install -q $(CONSTRAINTS) -e ".[vision,dashboard]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml constraints.txt | $(PY)
	$(PIP) install -q $(CONSTRAINTS) -e ".[dev]"
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(PY) -m optuna_qlearn demo $(ARGS)

# The browser test drives Debian's chromium (no browser download works offline).
chromium:
	@test -x /usr/bin/chromium || { \
	  echo "installing Debian chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(VENV)/bin/mypy

docs: $(VENV)/.dev-installed
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

test: $(VENV)/.dev-installed chromium lint typecheck
	$(VENV)/bin/pytest -n 2 --durations=15 $(PYTEST_ARGS)

overhead: $(VENV)/.dev-installed
	$(PY) -m benchmarks.overhead

bench: $(VENV)/.dev-installed
	$(PY) -m benchmarks.run $(ARGS)

clean:
	rm -rf $(VENV) docs/_build .mypy_cache .ruff_cache .pytest_cache test-artifacts
