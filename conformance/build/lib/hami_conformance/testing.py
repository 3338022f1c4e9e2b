"""A base class vendors subclass to run the suite inside their own pytest run.

    from hami_conformance.testing import ConformanceSuite
    import hami_plugins_acme.plugin as plugin

    class TestAcmeConformance(ConformanceSuite):
        plugin = plugin             # module, object, or dotted module name
        backend = "sim"             # or "real" on a machine with the devices
        expected = {"isolation/priority": "unsupported"}   # declared gaps, checked both ways

Each behaviour x device model becomes one test (``test_behaviour[Model::behaviour/id]``): a MUST not met
fails with the evidence, a SHOULD/MAY not met is xfail, an unverified one is skipped.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import ClassVar

import pytest

from hami_hal.manager import Hal
from hami_hal.models import CapabilityResult, DeviceModelEntry, Level

from .verdict import verdict


def hal_factory_for(plugin: object | str | None, name: str | None = None) -> Callable[[], Hal]:
    """A factory of fresh plugin managers holding only ``plugin`` (None: every installed plugin)."""
    if plugin is None:
        return Hal
    if isinstance(plugin, str):
        if "." not in plugin and plugin.isidentifier() and _is_entry_point(plugin):
            return lambda: Hal(allow=[plugin])
        plugin = importlib.import_module(plugin)
    if isinstance(plugin, ModuleType):
        module = plugin
        return lambda: Hal(entrypoints=False, modules=[module])
    obj = plugin
    plugin_name = name or getattr(obj, "PLUGIN_NAME", type(obj).__name__.lower())

    def make() -> Hal:
        hal = Hal(entrypoints=False)
        hal.register(obj, plugin_name, getattr(obj, "__version__", None))
        return hal

    return make


def _is_entry_point(name: str) -> bool:
    from importlib.metadata import entry_points

    from hami_hal import ENTRY_POINT_GROUP

    return any(ep.name == name for ep in entry_points(group=ENTRY_POINT_GROUP))


class ConformanceSuite:
    """Subclass with ``plugin`` set; the pytest plugin parametrizes ``test_behaviour`` per cell."""

    plugin: ClassVar[object | str | None] = None
    backend: ClassVar[str] = "sim"
    sim_node: ClassVar[str | None] = None
    #: Only behaviours with these IDs or ID prefixes (None: all).
    behaviours: ClassVar[list[str] | None] = None
    #: Declared levels per behaviour ID; a cell must then have exactly that level.
    expected: ClassVar[dict[str, str]] = {}

    def test_behaviour(self, hami_conformance_cell: tuple[DeviceModelEntry, CapabilityResult]) -> None:
        entry, cell = hami_conformance_cell
        want = self.expected.get(cell.id)
        apply_verdict(entry, cell, Level(want) if want else None)


def apply_verdict(entry: DeviceModelEntry, cell: CapabilityResult, expected: Level | None = None) -> None:
    """Turn a cell into pass / fail / skip / xfail of the running test."""
    v = verdict(entry, cell, expected)
    if v.outcome == "fail":
        pytest.fail(v.message, pytrace=False)
    if v.outcome == "skip":
        pytest.skip(v.message)
    if v.outcome == "xfail":
        pytest.xfail(v.message)
