"""Routing answers only the owning plugin, even for plugins registered later; contexts are explicit."""

from __future__ import annotations

import pytest
from test_manager_loading import plugin_module

from hami_hal.errors import HalError
from hami_hal.models import HealthStatus
from hami_hal.testing import isolated_hal, sim_inventory


def test_a_plugin_registered_after_the_first_call_is_not_reached_through_the_cache(acme):
    hal = isolated_hal(acme)
    inv = sim_inventory(hal, "acme-mixed-4")
    dev = inv.devices[0]
    assert hal.health(dev).healthy  # caches the caller for (acme, hami_hal_device_health)
    calls = []
    late = plugin_module("zeta", hami_hal_device_health=lambda device: calls.append(device.uuid) or HealthStatus(
        uuid=device.uuid, healthy=False, reason="zeta says so"))
    hal.register(late, "zeta")
    assert hal.health(dev).healthy and calls == []  # acme's answer only; zeta never saw acme's device


def test_contexts_travel_with_the_inventory_and_none_is_made_up(acme):
    hal = isolated_hal(acme)
    inv = sim_inventory(hal, "acme-mixed-4")
    ctx = inv.context("acme")
    assert ctx is not None and ctx.simulated and ctx.sim is not None
    assert inv.contexts() == {"acme": ctx}
    fresh = isolated_hal(acme)
    with pytest.raises(HalError, match="no discovery has run on this manager"):
        fresh.health(inv.devices[0])
    assert fresh.health(inv.devices[0], context=ctx).healthy  # explicit context: no hidden state needed
    from hami_hal.models import NodeInventory

    assert NodeInventory.model_validate_json(inv.model_dump_json()).context("acme") is None  # not serialised


def test_a_plugin_named_twice_loads_once_and_a_name_clash_is_one_line(acme):
    from hami_hal.errors import PluginLoadError
    from hami_hal.manager import Hal

    hal = Hal(entrypoints=False, modules=[acme, acme])  # e.g. its entry point and HAMI_HAL_PLUGIN_MODULES
    assert list(hal.plugins) == ["acme"]
    other = plugin_module("acme", vendor="acme2")
    with pytest.raises(PluginLoadError, match="plugin 'acme': Plugin name already registered"):
        hal.register(other, "acme")
