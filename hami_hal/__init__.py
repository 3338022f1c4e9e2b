"""hami-hal: one plugin interface to discover, partition, isolate, measure and schedule AI accelerators.

Vendor plugins implement the hooks declared in :mod:`hami_hal.hookspecs` and mark their
implementations with :data:`hookimpl`.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

#: The project name pluggy uses for the markers and the plugin manager.
PROJECT = "hami_hal"
#: The entry-point group vendor distributions register their plugin module in.
ENTRY_POINT_GROUP = "hami_hal.plugins"
#: apiVersion of every serialised hami-hal object (inventory, capability matrix, profiles).
API_VERSION = "hami-hal.io/v1alpha1"

hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

__all__ = ["API_VERSION", "ENTRY_POINT_GROUP", "PROJECT", "__version__", "hookimpl", "hookspec"]
