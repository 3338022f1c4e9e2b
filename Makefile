# Development workspace: one virtualenv (.venv) with every distribution of the repo installed editable.
# README.md shows the two commands a fresh machine needs: `make run` and `make test`.
PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
# Distributions besides the root one: every folder with a pyproject.toml (vendor plugins
# hami_plugins_<vendor>/, conformance/, scheduler/), so a new plugin needs no edit here.
DISTS    := $(sort $(patsubst %/pyproject.toml,%,$(wildcard */pyproject.toml)))
STAMP    := $(VENV)/.installed
# Where `make dist` writes the wheels of every distribution.
DIST_DIR ?= dist
# setuptools prints an informational "Editable installation" notice for every flat-layout project it
# installs editable; it is not about our files, so setup keeps it off the screen. Real warnings still show.
QUIET_EDITABLE := PYTHONWARNINGS="ignore:Editable installation"
# The main job: the conformance suite against every installed plugin's devices on this node (real
# when present, else the plugins' simulated profiles, labelled so), writing the capability matrix
# as JSON, Markdown and HTML into hami-out/.
RUN_CMD  := $(BIN)/hami conformance run --out hami-out

.PHONY: setup test lint run bench bench-fake schemas dist wheels clean

# Re-installs only when a pyproject.toml changed, so `make test` is fast once set up.
$(STAMP): pyproject.toml $(foreach d,$(DISTS),$(d)/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "hami-hal needs Python 3.11+ (set PYTHON=python3.11)"; exit 1; }
	$(BIN)/pip install -q --upgrade pip 'setuptools>=77' wheel cffi
	# The metrics extra backs `hami metrics` (optional for the core, needed by its tests).
	# matplotlib draws the simulator's PNG (hami-scheduler[plot]); its tests check the plot.
	$(QUIET_EDITABLE) $(BIN)/pip install -q --no-build-isolation -e ".[dev,metrics]" matplotlib \
		$(foreach d,$(DISTS),-e ./$(d))
	touch $@

setup: $(STAMP)

lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python hack/pytest_timing_retry.py

run: setup
	$(RUN_CMD)

bench: setup
	$(BIN)/python -m pytest -q --benchmark-only --benchmark-enable $(wildcard conformance/benchmarks scheduler/benchmarks)

# The interposer's fake-GPU timing checks (pytest marker fake_timing: shares, waits and charges the fake libcuda
# measured, which depend on this host's speed), as a bench writing hami-out/bench/fake-timing.json; not in `make test`.
# More rounds: make bench-fake ARGS="--rounds 3".
bench-fake: setup
	$(BIN)/python hami_plugins_nvidia/bench/fake_timing.py $(ARGS)

schemas: setup
	$(BIN)/hami schemas export

# Wheels of every distribution into $(DIST_DIR)/, for an operator to install only what a node needs:
#   pip install --find-links dist hami-hal hami-plugins-nvidia
dist: setup
	$(MAKE) --no-print-directory wheels BIN=$(BIN) DIST_DIR=$(DIST_DIR)
	@ls -1 $(DIST_DIR)/*.whl

# The build itself, without the setup step (tests call it with BIN= the interpreter running them).
# Stale build/ folders would leak removed files into the wheels, so they go first. No build isolation:
# the venv already holds setuptools and cffi, so this works offline.
wheels:
	rm -rf build $(addsuffix /build,$(DISTS)) $(DIST_DIR)/*.whl
	$(BIN)/python -m pip wheel -q --no-deps --no-build-isolation -w $(DIST_DIR) . $(addprefix ./,$(DISTS))
	rm -rf build $(addsuffix /build,$(DISTS))

clean:
	rm -rf $(VENV) build *.egg-info */*.egg-info */build $(DIST_DIR)

# Real control plane for tests/e2e (kube-apiserver, kube-scheduler, etcd, helm), cached by version.
k8s-bins:
	hack/k8s-bins.sh
