"""Loading: which plugins come in (entry points, modules, allow/deny lists) and the checks at the door.

Plugins come from the ``hami_hal.plugins`` entry-point group, plus modules named in
``HAMI_HAL_PLUGIN_MODULES`` (for development, like ``pytest -p``). Selection:

- ``HAMI_HAL_PLUGINS=acme,zeta`` loads only those (allow-list);
- ``HAMI_HAL_DISABLE_PLUGINS=zeta`` never loads those (deny-list, wins over the allow-list);
- the same two lists under ``plugins: {allow: [...], deny: [...]}`` in the file ``HAMI_HAL_CONFIG``
  (read by :func:`config_file_lists`, the one place the config file is loaded).

A plugin that cannot be imported is *skipped* with one line saying why. A plugin that implements an
unknown hook, a wrong signature, no required hook or a vendor already taken *fails loudly*
(:class:`PluginLoadError`).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType

import pluggy

from . import ENTRY_POINT_GROUP
from .config_file import plugin_lists_from_env
from .errors import PluginLoadError
from .models import SkippedPlugin, VendorInfo
from .plugin_routing import call_one

REQUIRED_HOOKS = ("hami_hal_vendor", "hami_hal_discover")


@dataclass
class LoadedPlugin:
    """A registered plugin with what the CLI reports about it."""

    name: str
    module: object
    vendor: VendorInfo
    version: str
    distribution: str | None
    hooks: list[str] = field(default_factory=list)


def split_list(value: str | None) -> set[str]:
    """``"a, b,,c"`` → ``{"a", "b", "c"}``."""
    return {v.strip() for v in (value or "").split(",") if v.strip()}


def config_file_lists() -> tuple[set[str], set[str]]:
    """(allow, deny) plugin lists from ``HAMI_HAL_CONFIG``; the bounds and field checks live in
    :mod:`hami_hal.config_file`."""
    return plugin_lists_from_env()


class PluginLoader:
    """Registers plugins into ``pm`` after validating them; ``on_register`` runs after each one."""

    def __init__(self, pm: pluggy.PluginManager, allow: Iterable[str] | None, deny: Iterable[str],
                 on_register: Callable[[], None]) -> None:
        self.pm = pm
        cfg_allow, cfg_deny = config_file_lists()
        env_allow = split_list(os.environ.get("HAMI_HAL_PLUGINS"))
        self.allow = set(allow) if allow is not None else (env_allow or cfg_allow)
        self.deny = set(deny) | split_list(os.environ.get("HAMI_HAL_DISABLE_PLUGINS")) | cfg_deny
        self.plugins: dict[str, LoadedPlugin] = {}
        self.skipped: list[SkippedPlugin] = []
        self.by_vendor: dict[str, str] = {}
        self._on_register = on_register

    def wanted(self, name: str) -> str | None:
        """Why ``name`` is not loaded, or None when it is."""
        if name in self.deny:
            return "disabled by the deny-list"
        if self.allow and name not in self.allow:
            return "not in the allow-list"
        return None

    def load_entrypoints(self) -> None:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            why = self.wanted(ep.name)
            if why:
                self.skipped.append(SkippedPlugin(name=ep.name, reason=why))
                continue
            try:
                module = ep.load()
            except ImportError as err:
                self.skipped.append(SkippedPlugin(name=ep.name, reason=f"cannot be imported: {err}"))
                continue
            dist = ep.dist
            self.register(module, ep.name, dist.version if dist else None, dist.name if dist else None)

    def load_module(self, mod: str | ModuleType) -> None:
        if isinstance(mod, str):
            try:
                module = importlib.import_module(mod)
            except ImportError as err:
                raise PluginLoadError(f"HAMI_HAL_PLUGIN_MODULES: {mod!r} cannot be imported: {err}") from None
        else:
            module = mod
        name = getattr(module, "PLUGIN_NAME", module.__name__.rsplit(".", 1)[-1])
        if self.pm.is_registered(module):
            return  # already loaded (e.g. from its entry point and HAMI_HAL_PLUGIN_MODULES both)
        if self.wanted(name) is None:
            self.register(module, name, getattr(module, "__version__", None), None)

    def register(self, plugin: object, name: str, version: str | None = None, dist: str | None = None) -> None:
        """Register and validate one plugin; raises PluginLoadError on a contract violation."""
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as err:
            self._drop(plugin)
            one_line = "; ".join(part.strip() for part in str(err).splitlines() if part.strip())
            raise PluginLoadError(f"plugin {name!r}: {one_line}") from None
        except ValueError as err:  # pluggy: the name or the object is already registered
            raise PluginLoadError(f"plugin {name!r}: {str(err).splitlines()[0]}") from None
        hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
        missing = [h for h in REQUIRED_HOOKS if h not in hooks]
        if missing:
            self._drop(plugin)
            raise PluginLoadError(f"plugin {name!r}: required hook {missing[0]} is not implemented")
        vendor = call_one(self.pm, plugin, "hami_hal_vendor")
        if not isinstance(vendor, VendorInfo):
            self._drop(plugin)
            raise PluginLoadError(f"plugin {name!r}: hami_hal_vendor returned {type(vendor).__name__}")
        if vendor.name in self.by_vendor:
            self._drop(plugin)
            raise PluginLoadError(
                f"plugin {name!r}: vendor {vendor.name!r} is already provided by {self.by_vendor[vendor.name]!r}"
            )
        version = version or getattr(plugin, "__version__", None) or "0+unknown"
        self.plugins[name] = LoadedPlugin(name, plugin, vendor, version, dist, hooks)
        self.by_vendor[vendor.name] = name
        self._on_register()  # e.g. the router drops callers cached before this plugin came

    def _drop(self, plugin: object) -> None:
        if self.pm.is_registered(plugin):
            self.pm.unregister(plugin)

    def module_for_vendor(self, vendor: str) -> object | None:
        name = self.by_vendor.get(vendor)
        return self.plugins[name].module if name else None
