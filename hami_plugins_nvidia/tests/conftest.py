"""Shared fixtures: a plugin-only Hal on simulated NVIDIA nodes, with fresh NVML ports per test."""

from __future__ import annotations

import pytest

from hami_hal.manager import Hal
from hami_plugins_nvidia import ports


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
