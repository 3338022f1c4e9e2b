"""pytest fixtures for plugin tests: ``pytest_plugins = ["hami_hal.testing.fixtures"]``."""

from __future__ import annotations

import pytest

from .helpers import PLUGIN_ENV_VARS, isolated_hal


@pytest.fixture
def clean_hal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every HAMI_HAL_* selection variable for the test."""
    for key in PLUGIN_ENV_VARS:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def hal_factory(clean_hal_env):
    """``hal_factory(module, ...)`` -> a Hal with exactly those plugin modules."""
    return isolated_hal
