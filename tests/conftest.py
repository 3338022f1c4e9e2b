"""Shared fixtures for hami-hal's core tests: the fictional acme plugin on simulated hardware."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

PLUGINS_DIR = Path(__file__).parent / "plugins"
if str(PLUGINS_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGINS_DIR))

import acme_plugin  # noqa: E402

from hami_hal.testing import PLUGIN_ENV_VARS, isolated_hal, sim_inventory  # noqa: E402

pytest_plugins = ["hami_hal.testing.fixtures"]


@pytest.fixture(autouse=True)
def _no_developer_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's HAMI_HAL_* variables must not change what the tests see."""
    for key in PLUGIN_ENV_VARS:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def acme():
    return acme_plugin


@pytest.fixture
def hal(acme):
    return isolated_hal(acme)


@pytest.fixture
def inv(hal):
    return sim_inventory(hal, "acme-mixed-4")


@pytest.fixture
def acme_vendor(hal):
    return hal.vendors()[0]


@pytest.fixture
def acme_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for running ``hami`` as a subprocess with only the acme plugin."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in PLUGIN_ENV_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGINS_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["HAMI_HAL_PLUGIN_MODULES"] = "acme_plugin"
    env["HAMI_HAL_PLUGINS"] = "acme"
    return env
