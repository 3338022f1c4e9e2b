"""Shared fixtures: a plugin-only Hal on simulated NVIDIA nodes, with fresh NVML ports per test."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

# The distribution folder has the package's own name (hami_plugins_nvidia/hami_plugins_nvidia). With the
# repo root on sys.path (``python -m pytest``) and pytest's importlib mode, ``hami_plugins_nvidia`` would
# resolve to the outer folder as an empty namespace (or to a placeholder module pytest inserts for the
# test files' dotted names), hiding the real package of an editable install. Put the distribution folder
# first and drop such a placeholder, so the real package is what every test imports.
_DIST = Path(__file__).resolve().parents[1]
if str(_DIST) not in sys.path:
    sys.path.insert(0, str(_DIST))
_placeholder = sys.modules.get("hami_plugins_nvidia")
if _placeholder is not None and getattr(_placeholder, "__file__", None) is None:
    del sys.modules["hami_plugins_nvidia"]
    real = importlib.import_module("hami_plugins_nvidia")
    if "hami_plugins_nvidia.tests" in sys.modules:
        real.tests = sys.modules["hami_plugins_nvidia.tests"]  # type: ignore[attr-defined]

from hami_hal.manager import Hal  # noqa: E402
from hami_plugins_nvidia import ports  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_ports(monkeypatch):
    monkeypatch.delenv("HAMI_HAL_PLUGIN_MODULES", raising=False)
    monkeypatch.delenv("HAMI_HAL_PLUGINS", raising=False)
    monkeypatch.delenv("HAMI_HAL_DISABLE_PLUGINS", raising=False)
    ports.reset()
    yield
    ports.reset()


@pytest.fixture
def hal() -> Hal:
    return Hal(entrypoints=False, modules=["hami_plugins_nvidia.plugin"])


@pytest.fixture
def sim(hal):
    """discover(node) -> NodeInventory of a simulated NVIDIA node."""

    def _discover(node: str, config: dict | None = None):
        return hal.discover("sim", sim_node=node, node_name="test-node", config=config)

    return _discover


@pytest.fixture(scope="session")
def load_script():
    """Loads a standalone script (a bench, programs.py) by path as a module registered under `name`: the benches
    are scripts, not package modules, and their tests import their parts."""

    def load(name: str, path: Path):
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        return mod

    return load
