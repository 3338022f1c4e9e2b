# Development workspace: one virtualenv (.venv) with every distribution of the repo installed editable.
# README.md shows the two commands a fresh machine needs: `make run` and `make test`.
PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
# Distributions besides the root one; a folder without pyproject.toml (not written yet) is skipped.
DISTS    := hami_plugins_nvidia hami_plugins_ascend hami_plugins_hygon conformance scheduler
PRESENT  := $(foreach d,$(DISTS),$(if $(wildcard $(d)/pyproject.toml),$(d)))
STAMP    := $(VENV)/.installed
# The main job: the conformance suite against every installed plugin's devices on this node (real
# when present, else the plugins' simulated profiles, labelled so), writing the capability matrix
# as JSON, Markdown and HTML into hami-out/.
RUN_CMD  := $(BIN)/hami conformance run --out hami-out

.PHONY: setup test lint run bench schemas clean

# Re-installs only when a pyproject.toml changed, so `make test` is fast once set up.
$(STAMP): pyproject.toml $(foreach d,$(PRESENT),$(d)/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "hami-hal needs Python 3.11+ (set PYTHON=python3.11)"; exit 1; }
	$(BIN)/pip install -q --upgrade pip setuptools wheel cffi
	# prometheus-client backs `hami metrics` (optional for the core, needed by its tests).
	# matplotlib draws the simulator's PNG (hami-scheduler[plot]); its tests check the plot.
	$(BIN)/pip install -q --no-build-isolation -e ".[dev]" prometheus-client matplotlib $(foreach d,$(PRESENT),-e ./$(d))
	touch $@

setup: $(STAMP)

lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m pytest -q

run: setup
	$(RUN_CMD)

bench: setup
	$(BIN)/python -m pytest -q --benchmark-only --benchmark-enable $(wildcard conformance/benchmarks scheduler/benchmarks)

schemas: setup
	$(BIN)/hami schemas export

clean:
	rm -rf $(VENV) build *.egg-info */*.egg-info
