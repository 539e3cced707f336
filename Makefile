# Two commands do everything on a fresh machine:
#   make demo   create .venv, install, run the main job (a real study in SQLite)
#   make test   install what the tests need, run lint, types, docs and the test suite
# While working:
#   make check  lint, types and the unit tests (not slow/service/browser), under a minute
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Pinned torch/torchvision pair (see constraints.txt).
CONSTRAINTS := -c constraints.txt
ARGS ?=
PYTEST_ARGS ?=
# The lowest Optuna the package supports: the floor pyproject.toml declares.
LOWEST_OPTUNA := $(shell sed -n 's/^ *"optuna>=\([0-9.]*\)",.*/\1/p' pyproject.toml | head -n 1)
LOWEST := build/lowest
# Optuna's sampler conformance suite (optuna.testing.pytest_samplers) first ships in 4.8.
CONFORMANCE_OPTUNA := 4.8.0

.PHONY: demo test test-lowest check lint typecheck docs bench overhead chromium clean

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

# The fast lane: what `make test` runs, less the tests marked slow (see tests/conftest.py),
# service (PostgreSQL/Redis) and browser; the docs build is one of the slow ones. One
# process: on the shared 2-core machine two xdist workers (each collecting every module)
# took longer and more CPU than one.
check: lint typecheck
	$(VENV)/bin/pytest -p no:xdist -q -m "not slow and not service and not browser" $(PYTEST_ARGS)

# A fresh venv with only the lowest Optuna pyproject.toml allows (plus numpy, tqdm, pytest;
# no torch), the package installed from the working tree (not editable), and the sampler tests.
test-lowest:
	@test -n "$(LOWEST_OPTUNA)" || { echo "no optuna>= floor found in pyproject.toml"; exit 1; }
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)/venv
	$(LOWEST)/venv/bin/pip install -q "optuna==$(LOWEST_OPTUNA)" pytest .
	$(LOWEST)/venv/bin/pip download -q --no-deps --only-binary :all: \
	  "optuna==$(CONFORMANCE_OPTUNA)" -d $(LOWEST)/wheel
	$(LOWEST)/venv/bin/python -c "import glob, zipfile; \
	  w = zipfile.ZipFile(glob.glob('$(LOWEST)/wheel/optuna-*.whl')[0]); \
	  open('$(LOWEST)/pytest_samplers.py', 'wb').write(w.read('optuna/testing/pytest_samplers.py'))"
	cd $(LOWEST) && venv/bin/python -c "import optuna, optuna_qlearn; \
	  print('optuna', optuna.__version__, 'package from', optuna_qlearn.__file__)"
	OPTUNA_QLEARN_CONFORMANCE_SUITE=$(LOWEST)/pytest_samplers.py $(LOWEST)/venv/bin/pytest \
	  -o pythonpath= -p no:cacheprovider -q tests/test_core.py tests/test_sampler.py

overhead: $(VENV)/.dev-installed
	$(PY) -m benchmarks.overhead

bench: $(VENV)/.dev-installed
	$(PY) -m benchmarks.run $(ARGS)

clean:
	rm -rf $(VENV) docs/_build .mypy_cache .ruff_cache .pytest_cache test-artifacts
