"""hami_hal.testing: what a vendor plugin's own tests reuse."""

from __future__ import annotations

import os
from types import ModuleType

from hami_hal import hookimpl
from hami_hal.models import ResourceFamily, VendorInfo
from hami_hal.testing import clean_plugin_env, isolated_hal, plugin_problems


def test_acme_plugin_is_sound(acme):
    assert plugin_problems(acme) == []


def test_problems_are_reported_as_lines():
    mod = ModuleType("no_profiles")
    mod.PLUGIN_NAME = "bare"
    mod.hami_hal_vendor = hookimpl(lambda: VendorInfo(name="bare", display_name="Bare", resources=[
        ResourceFamily(common_word="B", count="bare.io/b")]))
    mod.hami_hal_discover = hookimpl(lambda context: [])
    assert plugin_problems(mod) == ["ships no node profile with its own devices (hami_hal_sim_profiles)"]
    broken = ModuleType("broken")
    broken.hami_hal_vendor = hookimpl(lambda: None)
    (line,) = plugin_problems(broken)
    assert line.startswith("does not load: plugin 'broken': required hook hami_hal_discover")


def test_isolated_hal_ignores_and_restores_the_environment(acme, monkeypatch):
    monkeypatch.setenv("HAMI_HAL_DISABLE_PLUGINS", "acme")
    assert isolated_hal(acme).plugins.keys() == {"acme"}
    with clean_plugin_env():
        assert "HAMI_HAL_DISABLE_PLUGINS" not in os.environ
    assert os.environ["HAMI_HAL_DISABLE_PLUGINS"] == "acme"


def test_hal_factory_fixture(hal_factory, acme):
    assert hal_factory(acme).vendors()[0].name == "acme"
