"""Plugin manager: validation at load time, allow/deny lists, skipped plugins with one line each."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from types import ModuleType

import pytest

from hami_hal import ENTRY_POINT_GROUP, hookimpl, plugin_loading
from hami_hal.errors import HalError, PluginLoadError
from hami_hal.manager import Hal
from hami_hal.models import Device, Provenance, ResourceFamily, VendorInfo
from hami_hal.testing import isolated_hal


def _vendor(name: str = "zeta") -> VendorInfo:
    return VendorInfo(name=name, display_name=name, resources=[ResourceFamily(common_word="Z", count=f"{name}.io/z")])


def plugin_module(name: str = "zeta", vendor: str | None = "zeta", **hooks) -> ModuleType:
    """A plugin module built on the fly; ``hooks`` are plain functions, marked here as hookimpls."""
    mod = ModuleType(f"test_plugin_{name}")
    mod.PLUGIN_NAME = name
    if vendor is not None:
        mod.hami_hal_vendor = hookimpl(lambda: _vendor(vendor))
        mod.hami_hal_discover = hookimpl(lambda context: [])
    for hook, func in hooks.items():
        setattr(mod, hook, hookimpl(func))
    return mod


def Minimal() -> ModuleType:  # noqa: N802 - reads like the class it stands for
    return plugin_module()


def UnknownHook() -> ModuleType:  # noqa: N802
    return plugin_module(hami_hal_frobnicate=lambda device: None)


def WrongSignature() -> ModuleType:  # noqa: N802
    return plugin_module(hami_hal_partition_model=lambda device, context, budget: None)


def NoDiscover() -> ModuleType:  # noqa: N802
    return plugin_module("nodisc", None, hami_hal_vendor=lambda: _vendor("nodisc"))


def BadVendor() -> ModuleType:  # noqa: N802
    return plugin_module("zeta", None, hami_hal_vendor=lambda: {"name": "zeta"},
                         hami_hal_discover=lambda context: [])


def ForeignDevices() -> ModuleType:  # noqa: N802
    dev = Device(vendor="someone-else", index=0, uuid="X-0", model="m", hami_type="m", memory_mib=1,
                 provenance=Provenance(source="real"))
    return plugin_module("zeta", None, hami_hal_vendor=lambda: _vendor(), hami_hal_discover=lambda context: [dev])


def test_minimal_plugin_loads_with_its_hooks():
    hal = isolated_hal(Minimal())
    plugin = hal.plugins["zeta"]
    assert plugin.hooks == ["hami_hal_discover", "hami_hal_vendor"] and plugin.version == "0+unknown"
    assert hal.vendors()[0].name == "zeta"


@pytest.mark.parametrize(("plugin", "text"), [
    (UnknownHook(), "unknown hook 'hami_hal_frobnicate'"),
    (WrongSignature(), "budget"),
    (NoDiscover(), "required hook hami_hal_discover is not implemented"),
    (BadVendor(), "hami_hal_vendor returned dict"),
])
def test_contract_violations_fail_loudly_at_load(plugin, text):
    with pytest.raises(PluginLoadError) as exc:
        isolated_hal(plugin)
    assert text in str(exc.value) and "\n" not in str(exc.value).strip()


def test_a_failed_plugin_is_unregistered():
    hal = isolated_hal()
    with pytest.raises(PluginLoadError):
        hal.register(UnknownHook(), "zeta")
    assert hal.pm.get_plugins() == set() and hal.plugins == {}


def test_duplicate_vendor_is_refused(acme):
    hal = isolated_hal(acme)
    with pytest.raises(PluginLoadError, match="already provided by 'acme'"):
        hal.register(plugin_module("acme2", "acme"), "acme-again")


def test_device_of_another_vendor_is_refused():
    hal = isolated_hal(ForeignDevices())
    with pytest.raises(PluginLoadError, match="device of vendor 'someone-else'"):
        hal.discover("real")


def test_allow_and_deny_arguments(acme):
    assert isolated_hal(acme, Minimal(), allow=["zeta"]).plugins.keys() == {"zeta"}
    assert isolated_hal(acme, Minimal(), deny=["zeta"]).plugins.keys() == {"acme"}


def test_allow_and_deny_environment(acme, monkeypatch):
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "acme")
    assert Hal(entrypoints=False, modules=[acme, Minimal()]).plugins.keys() == {"acme"}
    monkeypatch.setenv("HAMI_HAL_DISABLE_PLUGINS", "acme")  # deny wins over allow
    assert Hal(entrypoints=False, modules=[acme, Minimal()]).plugins.keys() == set()


def test_allow_and_deny_config_file(acme, monkeypatch, tmp_path):
    cfg = tmp_path / "hal.yaml"
    cfg.write_text("plugins:\n  deny: [zeta]\n")
    monkeypatch.setenv("HAMI_HAL_CONFIG", str(cfg))
    assert Hal(entrypoints=False, modules=[acme, Minimal()]).plugins.keys() == {"acme"}
    cfg.write_text("plugins:\n  allow: [zeta]\n")
    assert Hal(entrypoints=False, modules=[acme, Minimal()]).plugins.keys() == {"zeta"}
    cfg.write_text("plugins: [zeta]\n")
    with pytest.raises(HalError, match="'plugins' must be a mapping"):
        Hal(entrypoints=False)


def test_plugin_modules_environment(monkeypatch):
    monkeypatch.setenv("HAMI_HAL_PLUGIN_MODULES", "acme_plugin")
    assert Hal(entrypoints=False).plugins.keys() == {"acme"}
    monkeypatch.setenv("HAMI_HAL_PLUGIN_MODULES", "no_such_plugin_module_xyz")
    with pytest.raises(PluginLoadError, match="no_such_plugin_module_xyz"):
        Hal(entrypoints=False)


def test_entry_points_load_and_broken_ones_are_skipped_with_one_line(monkeypatch):
    eps = [
        EntryPoint(name="acme", value="acme_plugin", group=ENTRY_POINT_GROUP),
        EntryPoint(name="broken", value="no_such_vendor_sdk_xyz.plugin", group=ENTRY_POINT_GROUP),
        EntryPoint(name="blocked", value="no_such_vendor_sdk_xyz.plugin", group=ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(plugin_loading, "entry_points", lambda group: [e for e in eps if e.group == group])
    monkeypatch.setenv("HAMI_HAL_DISABLE_PLUGINS", "blocked")
    hal = Hal()
    assert hal.plugins.keys() == {"acme"}
    reasons = {s.name: s.reason for s in hal.skipped}
    assert reasons["blocked"] == "disabled by the deny-list"
    assert reasons["broken"].startswith("cannot be imported:") and "no_such_vendor_sdk_xyz" in reasons["broken"]


def test_absent_backend_is_skipped_not_fatal(hal):
    inv = hal.discover("real", node_name="n")
    assert inv.source == "empty" and inv.devices == []
    (skip,) = inv.skipped
    assert skip.name == "acme" and "libacme.so not found" in skip.reason and "\n" not in skip.reason


def test_auto_falls_back_to_simulation_and_says_so(hal):
    inv = hal.discover("auto", node_name="n")
    assert inv.source == "simulated" and len(inv.devices) == 4
    assert all(d.provenance.simulated and d.provenance.profile == "acme-mixed-4" for d in inv.devices)
    assert any("libacme.so" in s.reason for s in inv.skipped)


def test_no_plugins_means_an_empty_inventory():
    inv = isolated_hal().discover("auto", node_name="n")
    assert inv.source == "empty" and inv.devices == [] and inv.vendors == []
