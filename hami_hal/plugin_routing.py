"""Routing: call a hook on exactly one plugin, the one owning a vendor, with a cache of callers.

The core calls every per-device hook on the owning plugin only (plugins never filter other vendors'
devices). Callers are cached per (vendor, hook); :meth:`Router.invalidate` empties the cache and is
called whenever a plugin registers, so a later plugin is never served another plugin's caller.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from .errors import HalError


def caller_for(pm: pluggy.PluginManager, plugin: object, hook: str) -> Callable:
    """A hook caller that reaches only ``plugin``."""
    others = [p for p in pm.get_plugins() if p is not plugin]
    return pm.subset_hook_caller(hook, remove_plugins=others)


def call_one(pm: pluggy.PluginManager, plugin: object, hook: str, **kwargs):
    """Call one plugin's implementation of ``hook`` (None when it has none)."""
    res = caller_for(pm, plugin, hook)(**kwargs)
    return res[0] if isinstance(res, list) and res else (None if isinstance(res, list) else res)


class Router:
    """Per-vendor hook callers; ``owner(vendor)`` names the plugin module that owns a vendor."""

    def __init__(self, pm: pluggy.PluginManager, owner: Callable[[str], object | None]) -> None:
        self._pm = pm
        self._owner = owner
        self._callers: dict[tuple[str, str], Callable] = {}

    def invalidate(self) -> None:
        self._callers.clear()

    def call(self, vendor: str, hook: str, **kwargs):
        """Call ``hook`` on the plugin owning ``vendor`` only."""
        key = (vendor, hook)
        caller = self._callers.get(key)
        if caller is None:
            plugin = self._owner(vendor)
            if plugin is None:
                raise HalError(f"vendor {vendor!r} has no installed plugin")
            caller = self._callers[key] = caller_for(self._pm, plugin, hook)
        return caller(**kwargs)
