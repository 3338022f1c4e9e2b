# Development workspace: one virtualenv with every distribution of the repo installed editable.
# `make test` and `make run` are the two commands README.md shows.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PKGS   := -e . -e ./hami_plugins_nvidia -e ./conformance -e ./scheduler

.PHONY: setup test lint run bench schemas clean

$(BIN)/hami: pyproject.toml hami_plugins_nvidia/pyproject.toml conformance/pyproject.toml scheduler/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel cffi
	$(BIN)/pip install -q $(PKGS) -e ".[dev]"
	touch $@

setup: $(BIN)/hami

lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m pytest -q

run: setup
	$(BIN)/hami conformance run --out hami-out

bench: setup
	$(BIN)/python -m pytest -q --benchmark-only --benchmark-enable -p no:randomly conformance/benchmarks scheduler/benchmarks

schemas: setup
	$(BIN)/hami schemas export

clean:
	rm -rf $(VENV) build *.egg-info */*.egg-info
