"""Build a Hal from given plugin modules only, and check a plugin against the core's expectations."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from ..errors import HalError
from ..manager import Hal
from ..models import NodeInventory

#: Environment variables that change which plugins and profiles a Hal sees.
PLUGIN_ENV_VARS = (
    "HAMI_HAL_PLUGINS", "HAMI_HAL_DISABLE_PLUGINS", "HAMI_HAL_PLUGIN_MODULES", "HAMI_HAL_CONFIG",
    "HAMI_HAL_PROFILE_PATH", "HAMI_HAL_TRACE_PLUGINS",
)


@contextmanager
def clean_plugin_env() -> Iterator[None]:
    """Temporarily remove every ``HAMI_HAL_*`` selection variable, so a test sees only what it asks for."""
    saved = {k: os.environ.pop(k) for k in PLUGIN_ENV_VARS if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def isolated_hal(*modules: ModuleType | str, **kwargs) -> Hal:
    """A Hal holding exactly ``modules`` (entry points off, selection variables ignored)."""
    with clean_plugin_env():
        return Hal(entrypoints=False, modules=modules, **kwargs)


def sim_inventory(hal: Hal, sim_node: str | None = None, node_name: str = "sim-node") -> NodeInventory:
    """Discover the simulated node (the default node profiles when ``sim_node`` is None)."""
    return hal.discover("sim", node_name=node_name, sim_node=sim_node)


def plugin_problems(module: ModuleType | str) -> list[str]:
    """What the core would reject or misreport about a plugin, as readable lines (empty = sound).

    Loads the plugin alone, then discovers every node profile it ships that holds its devices and
    checks the devices: vendor key, unique UUIDs, a partition model, simulated provenance.
    """
    try:
        hal = isolated_hal(module)
    except HalError as err:
        return [f"does not load: {err}"]
    if len(hal.plugins) != 1:
        return ["loaded no plugin (blocked by PLUGIN_NAME or allow/deny lists?)"]
    plugin = next(iter(hal.plugins.values()))
    vendor = plugin.vendor.name
    problems: list[str] = []
    if not plugin.vendor.resources:
        problems.append("hami_hal_vendor declares no resource family")
    try:
        catalog = hal.catalog()
    except HalError as err:
        return [f"simulation profiles do not load: {err}"]
    nodes = [n for n, p in catalog.nodes.items()
             if any(catalog.devices.get(g.profile) and catalog.devices[g.profile].spec.vendor == vendor
                    for g in p.spec.devices)]
    if not nodes:
        problems.append("ships no node profile with its own devices (hami_hal_sim_profiles)")
    for name in sorted(nodes):
        try:
            inv = sim_inventory(hal, name)
        except HalError as err:
            problems.append(f"node profile {name!r}: discovery fails: {err}")
            continue
        if not inv.devices:
            problems.append(f"node profile {name!r}: discovers no device")
        uuids = [d.uuid for d in inv.devices]
        if len(set(uuids)) != len(uuids):
            problems.append(f"node profile {name!r}: duplicate device UUIDs")
        for d in inv.devices:
            if d.provenance.source != "simulated":
                problems.append(f"node profile {name!r}: device {d.uuid} is not marked simulated")
            if d.partition is None:
                problems.append(f"node profile {name!r}: device {d.uuid} has no partition model")
    return problems
